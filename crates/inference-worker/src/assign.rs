//! Which helper prepares which photo: the pool's bookkeeping as a plain type, without JS, so
//! that its rules are tested natively. [`crate::pool`] carries out the [`Step`]s it gives.

use std::collections::VecDeque;

/// Photos sent to one helper and not yet answered, at most: one being prepared, one waiting,
/// so that a helper never idles while its last answer is on its way.
pub const PER_HELPER: usize = 2;

/// What the pool does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<J> {
    /// Send `job` to helper `helper`.
    Send { helper: u32, job: J },
    /// Start helper `helper` (then [`Assignments::stopped`] with `ran: false` if it cannot).
    Start { helper: u32 },
    /// No helper is wanted: these photos are prepared by the worker itself.
    Fallback(Vec<J>),
}

struct Helper<J> {
    key: u32,
    /// It has loaded the model: a stop from now on is a photo's doing.
    loaded: bool,
    /// Oldest first: a helper answers in the order it was sent.
    in_flight: VecDeque<J>,
}

/// The helpers wanted and running, what each holds, and the photos waiting for one.
pub struct Assignments<J> {
    wanted: usize,
    helpers: Vec<Helper<J>>,
    waiting: VecDeque<J>,
    next_key: u32,
}

impl<J> Default for Assignments<J> {
    fn default() -> Self {
        Self {
            wanted: 0,
            helpers: Vec::new(),
            waiting: VecDeque::new(),
            next_key: 0,
        }
    }
}

impl<J: Clone> Assignments<J> {
    /// Helpers wanted: 0 prepares in the worker itself.
    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// Runs `wanted` helpers from now on; returns the helpers to stop (the newest), whose
    /// photos wait again, first in line.
    pub fn set_wanted(&mut self, wanted: usize) -> Vec<u32> {
        self.wanted = wanted;
        let keep = self.helpers.len().min(wanted);
        let extra: Vec<Helper<J>> = self.helpers.drain(keep..).collect();
        self.take_back(extra)
    }

    /// Every helper is to stop (they hold another model); returns them. Their photos wait
    /// again, first in line, for the helpers started next.
    pub fn replace_all(&mut self) -> Vec<u32> {
        let all: Vec<Helper<J>> = self.helpers.drain(..).collect();
        self.take_back(all)
    }

    pub fn queue(&mut self, job: J) {
        self.waiting.push_back(job);
    }

    /// The next thing to do, `None` when there is nothing (no photo waiting, or every helper
    /// is full and as many run as are wanted).
    pub fn next(&mut self) -> Option<Step<J>> {
        if self.waiting.is_empty() {
            return None;
        }
        if self.wanted == 0 {
            return Some(Step::Fallback(self.waiting.drain(..).collect()));
        }
        let free = self
            .helpers
            .iter_mut()
            .filter(|h| h.in_flight.len() < PER_HELPER)
            .min_by_key(|h| h.in_flight.len());
        if let Some(helper) = free {
            let job = self.waiting.pop_front()?;
            helper.in_flight.push_back(job.clone());
            return Some(Step::Send {
                helper: helper.key,
                job,
            });
        }
        if self.helpers.len() < self.wanted {
            let key = self.next_key;
            self.next_key = self.next_key.wrapping_add(1);
            self.helpers.push(Helper {
                key,
                loaded: false,
                in_flight: VecDeque::new(),
            });
            return Some(Step::Start { helper: key });
        }
        None
    }

    /// Helper `helper` has loaded the model.
    pub fn loaded(&mut self, helper: u32) {
        if let Some(h) = self.helpers.iter_mut().find(|h| h.key == helper) {
            h.loaded = true;
        }
    }

    /// Takes out the helpers with nothing to do while no photo waits (they are started again
    /// when photos come): returns them, to stop.
    pub fn idle(&mut self) -> Vec<u32> {
        if !self.waiting.is_empty() {
            return Vec::new();
        }
        let (idle, busy): (Vec<_>, Vec<_>) =
            self.helpers.drain(..).partition(|h| h.in_flight.is_empty());
        self.helpers = busy;
        idle.into_iter().map(|h| h.key).collect()
    }

    /// Helper `helper` answered the photo `is_it` picks out.
    pub fn answered(&mut self, helper: u32, is_it: impl Fn(&J) -> bool) {
        if let Some(h) = self.helpers.iter_mut().find(|h| h.key == helper)
            && let Some(at) = h.in_flight.iter().position(is_it)
        {
            h.in_flight.remove(at);
        }
    }

    /// Helper `helper` stopped: while preparing (`ran`, after it loaded the model: the photo it
    /// got first is the one it stopped on, returned to be answered as failed), or before (it
    /// could not start, or not load the model: no photo's doing). It is not replaced: the
    /// pool goes on with the helpers left, and its other photos wait again, first in line.
    /// `None` for a helper already taken out.
    pub fn stopped(&mut self, helper: u32, ran: bool) -> Option<Stopped<J>> {
        let at = self.helpers.iter().position(|h| h.key == helper)?;
        let mut gone = self.helpers.remove(at);
        let culprit = if ran && gone.loaded {
            gone.in_flight.pop_front()
        } else {
            None
        };
        self.take_back(vec![gone]);
        self.wanted = self.helpers.len();
        Some(Stopped {
            culprit,
            left: self.helpers.len(),
        })
    }

    /// Puts the photos of `helpers` back at the head of the line, oldest first; returns their
    /// keys.
    fn take_back(&mut self, helpers: Vec<Helper<J>>) -> Vec<u32> {
        let mut keys = Vec::with_capacity(helpers.len());
        let mut back = VecDeque::new();
        for helper in helpers {
            keys.push(helper.key);
            back.extend(helper.in_flight);
        }
        back.extend(self.waiting.drain(..));
        self.waiting = back;
        keys
    }
}

/// What a helper's stop leaves to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Stopped<J> {
    /// The photo it stopped on, to answer as failed.
    pub culprit: Option<J>,
    /// Helpers left.
    pub left: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(step: Option<Step<u32>>) -> (u32, u32) {
        match step {
            Some(Step::Send { helper, job }) => (helper, job),
            other => panic!("expected a photo sent, got {other:?}"),
        }
    }

    #[test]
    fn photos_go_to_the_least_busy_helper_two_at_a_time() {
        let mut a = Assignments::default();
        assert!(a.set_wanted(2).is_empty());
        for job in 0..6 {
            a.queue(job);
        }
        assert_eq!(a.next(), Some(Step::Start { helper: 0 }));
        assert_eq!(send(a.next()), (0, 0));
        // A helper with room takes a photo before another starts (a start takes a while).
        assert_eq!(send(a.next()), (0, 1));
        assert_eq!(a.next(), Some(Step::Start { helper: 1 }));
        assert_eq!(send(a.next()), (1, 2));
        assert_eq!(send(a.next()), (1, 3));
        assert_eq!(a.next(), None, "both full");
        a.answered(1, |j| *j == 2);
        assert_eq!(send(a.next()), (1, 4));
        a.answered(0, |j| *j == 0);
        assert_eq!(send(a.next()), (0, 5));
        assert_eq!(a.next(), None, "nothing waits");
        // Of two helpers with room, the one with less to do gets the next photo, though it
        // comes second: helper 0 still holds 5, helper 1 nothing.
        a.answered(0, |j| *j == 1);
        a.answered(1, |j| *j == 3);
        a.answered(1, |j| *j == 4);
        a.queue(6);
        assert_eq!(send(a.next()), (1, 6));
    }

    #[test]
    fn without_helpers_the_worker_prepares_the_photos_itself() {
        let mut a = Assignments::default();
        a.queue(7);
        a.queue(8);
        assert_eq!(a.next(), Some(Step::Fallback(vec![7, 8])));
        assert_eq!(a.next(), None);
    }

    #[test]
    fn fewer_helpers_stop_the_newest_and_their_photos_go_first() {
        let mut a = Assignments::default();
        a.set_wanted(2);
        for job in 0..5 {
            a.queue(job);
        }
        while let Some(step) = a.next() {
            assert!(matches!(step, Step::Start { .. } | Step::Send { .. }));
        }
        // Helper 0 holds 0 and 1, helper 1 holds 2 and 3; 4 waits.
        assert_eq!(a.set_wanted(1), vec![1]);
        a.answered(0, |j| *j == 0);
        assert_eq!(send(a.next()), (0, 2));
        assert_eq!(a.next(), None);
        assert_eq!(a.set_wanted(0), vec![0]);
        assert_eq!(a.next(), Some(Step::Fallback(vec![1, 2, 3, 4])));
    }

    #[test]
    fn a_helper_that_stops_fails_its_photo_and_the_pool_shrinks() {
        let mut a = Assignments::default();
        a.set_wanted(2);
        for job in 0..5 {
            a.queue(job);
        }
        while a.next().is_some() {}
        a.loaded(0);
        a.loaded(1);
        let stopped = a.stopped(0, true).expect("helper 0 runs");
        assert_eq!(
            stopped,
            Stopped {
                culprit: Some(0),
                left: 1
            }
        );
        assert_eq!(a.wanted(), 1, "not replaced");
        assert_eq!(a.stopped(0, true), None, "already out");
        // Its other photo goes first, then the one that waited; helper 1 is full.
        assert_eq!(a.next(), None);
        a.answered(1, |j| *j == 2);
        assert_eq!(send(a.next()), (1, 1));
        // The last helper stops before answering: its photos, and the rest, come back to
        // the worker itself.
        let stopped = a.stopped(1, false).expect("helper 1 runs");
        assert_eq!(
            stopped,
            Stopped {
                culprit: None,
                left: 0
            }
        );
        assert_eq!(a.next(), Some(Step::Fallback(vec![3, 1, 4])));
    }

    #[test]
    fn a_helper_that_stops_before_the_model_is_loaded_fails_no_photo() {
        let mut a = Assignments::default();
        a.set_wanted(1);
        a.queue(0);
        a.queue(1);
        assert_eq!(a.next(), Some(Step::Start { helper: 0 }));
        assert_eq!(send(a.next()), (0, 0));
        let stopped = a.stopped(0, true).expect("helper 0 runs");
        assert_eq!(
            stopped,
            Stopped {
                culprit: None,
                left: 0
            }
        );
        assert_eq!(a.next(), Some(Step::Fallback(vec![0, 1])));
        // One that could not start at all: the same.
        a.set_wanted(2);
        a.queue(2);
        assert_eq!(a.next(), Some(Step::Start { helper: 1 }));
        assert_eq!(a.stopped(1, false).map(|s| s.culprit), Some(None));
        assert_eq!(a.next(), Some(Step::Fallback(vec![2])));
    }

    #[test]
    fn idle_helpers_are_let_go_and_started_again_when_photos_come() {
        let mut a = Assignments::default();
        a.set_wanted(2);
        for job in 0..3 {
            a.queue(job);
        }
        while a.next().is_some() {}
        assert!(a.idle().is_empty(), "none idle");
        a.answered(1, |j| *j == 2);
        assert_eq!(a.idle(), vec![1]);
        a.answered(0, |j| *j == 0);
        a.answered(0, |j| *j == 1);
        assert_eq!(a.idle(), vec![0]);
        assert_eq!(a.wanted(), 2, "still wanted");
        a.queue(3);
        assert_eq!(a.next(), Some(Step::Start { helper: 2 }));
        assert_eq!(send(a.next()), (2, 3));
    }

    #[test]
    fn a_new_model_starts_new_helpers_with_the_photos_in_their_order() {
        let mut a = Assignments::default();
        a.set_wanted(1);
        for job in 0..3 {
            a.queue(job);
        }
        while a.next().is_some() {}
        assert_eq!(a.replace_all(), vec![0]);
        assert_eq!(a.next(), Some(Step::Start { helper: 1 }));
        assert_eq!(send(a.next()), (1, 0));
        assert_eq!(send(a.next()), (1, 1));
        assert_eq!(a.next(), None);
    }
}
