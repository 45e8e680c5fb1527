//! Training one model on several workers at once (data parallelism): every worker holds the
//! rows of its own share of the training photos, computes the gradients of the rows of each
//! batch it holds, and the workers add their gradients before the same optimizer step. The
//! batch's loss is a mean over its rows, so each worker scales its own mean by its share of
//! the batch; the sum is then the gradient of the whole batch, and every worker's weights stay
//! those one worker would reach on the whole batch, to float rounding.
//!
//! The first worker ([`Peers::rank`] 0) leads: it reports epochs, scores validation and
//! decides when the run stops. The others follow its steps (see
//! [`super::finetune::follow_fine_tune`]); a follower learns that the run is over when its
//! link to the first worker closes.
//!
//! How the sums travel is the host's: [`Leader`] and [`Follower`] carry them over channels, fed
//! by threads natively or by `postMessage` between browser workers.

use super::labelled::TrainError;

/// Workers that train one model together.
pub trait Peers {
    /// This worker's place among them (0: the one that leads).
    fn rank(&self) -> usize;
    /// How many they are (1: this worker alone).
    fn ranks(&self) -> usize;
    /// `values` added element-wise across every worker; each gets the same sum.
    fn sum(&self, values: Vec<f32>) -> impl Future<Output = Result<Vec<f32>, TrainError>>;
    /// (The first worker) hands another worker its share of the fine-tuning stage: `share`
    /// with its training rows (`boundary`, `augmented`) left empty, and those rows in `pieces`,
    /// in order, to go before it, so that neither worker holds a second copy of them at once.
    fn hand_out(&self, share: StageShare, pieces: &mut dyn Iterator<Item = ShareRows>);
}

/// Training rows of a share's held photos `first..` (as many as it holds), handed out ahead of
/// the share ([`Peers::hand_out`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ShareRows {
    pub first: usize,
    pub count: usize,
    /// One boundary row per photo.
    pub boundary: Vec<f32>,
    /// `views` augmented rows per photo (none: no views).
    pub augmented: Option<Vec<f32>>,
}

/// One worker training alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl Peers for Alone {
    fn rank(&self) -> usize {
        0
    }

    fn ranks(&self) -> usize {
        1
    }

    async fn sum(&self, values: Vec<f32>) -> Result<Vec<f32>, TrainError> {
        Ok(values)
    }

    fn hand_out(&self, _: StageShare, _: &mut dyn Iterator<Item = ShareRows>) {}
}

/// Which of a stage's training photos a worker holds: photo `i` (in the stage's order) is held
/// by worker `i % ranks`, which keeps it as its row `i / ranks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub rank: usize,
    pub ranks: usize,
    /// Training photos across every worker.
    pub photos: usize,
}

impl Share {
    pub fn whole(photos: usize) -> Self {
        Self {
            rank: 0,
            ranks: 1,
            photos,
        }
    }

    pub fn holds(&self, photo: usize) -> bool {
        photo % self.ranks.max(1) == self.rank
    }

    /// How many photos it holds.
    pub fn held(&self) -> usize {
        let ranks = self.ranks.max(1);
        self.photos / ranks + usize::from(self.rank < self.photos % ranks)
    }

    /// The row of a photo it holds.
    pub fn row(&self, photo: usize) -> usize {
        photo / self.ranks.max(1)
    }

    /// Of `items` (one per photo, in order), the ones this worker holds.
    pub fn pick<T: Copy>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.rank)
            .step_by(self.ranks.max(1))
            .copied()
            .collect()
    }
}

/// What a follower needs to train the fine-tuning stage with the first worker: where it
/// starts, and the rows of the photos it holds. Plain data, to send between workers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageShare {
    pub share_rank: usize,
    pub ranks: usize,
    /// Training photos across every worker.
    pub photos: usize,
    pub classes: usize,
    /// Every weight of the stage's model (the unfrozen top, then the head) as it starts, in
    /// the module's order.
    pub weights: Vec<f32>,
    /// The labels of the photos it holds.
    pub labels: Vec<usize>,
    /// Their boundary activations, one row per photo.
    pub boundary: Vec<f32>,
    /// Their augmented views' boundary activations, `views` rows per photo (none: no views).
    pub augmented: Option<Vec<f32>>,
    pub views: usize,
    /// Validation photos across every worker (each scores its share after every epoch).
    pub val_photos: usize,
    /// The labels of the validation photos it holds.
    pub val_labels: Vec<usize>,
    /// Their boundary activations, one row per photo.
    pub val_boundary: Vec<f32>,
}

impl StageShare {
    /// Which of the training photos it holds.
    pub fn share(&self) -> Share {
        Share {
            rank: self.share_rank,
            ranks: self.ranks,
            photos: self.photos,
        }
    }

    /// Which of the validation photos it holds.
    pub fn val_share(&self) -> Share {
        Share {
            photos: self.val_photos,
            ..self.share()
        }
    }
}

type HandOut = Box<dyn Fn(StageShare, &mut dyn Iterator<Item = ShareRows>)>;

/// The first worker's end of the links: one per follower, each a way to send and a queue of
/// what it sent.
pub struct Leader {
    followers: Vec<Link>,
    hand_out: HandOut,
}

/// A way to send to another worker, and what it sent, in order.
pub struct Link {
    pub send: Box<dyn Fn(Vec<f32>)>,
    pub heard: async_channel::Receiver<Vec<f32>>,
}

impl Leader {
    /// Leads `followers` (ranks 1, 2, … in order); `hand_out` delivers each one's share
    /// ([`Peers::hand_out`]).
    pub fn new(
        followers: Vec<Link>,
        hand_out: impl Fn(StageShare, &mut dyn Iterator<Item = ShareRows>) + 'static,
    ) -> Self {
        Self {
            followers,
            hand_out: Box::new(hand_out),
        }
    }
}

impl Peers for Leader {
    fn rank(&self) -> usize {
        0
    }

    fn ranks(&self) -> usize {
        1 + self.followers.len()
    }

    async fn sum(&self, mut values: Vec<f32>) -> Result<Vec<f32>, TrainError> {
        for follower in &self.followers {
            let theirs = follower.heard.recv().await.map_err(|_| lost())?;
            if theirs.len() != values.len() {
                return Err(lost());
            }
            values.iter_mut().zip(&theirs).for_each(|(v, t)| *v += t);
        }
        for follower in &self.followers {
            (follower.send)(values.clone());
        }
        Ok(values)
    }

    fn hand_out(&self, share: StageShare, pieces: &mut dyn Iterator<Item = ShareRows>) {
        (self.hand_out)(share, pieces);
    }
}

/// A follower's end of its link to the first worker.
pub struct Follower {
    pub rank: usize,
    pub ranks: usize,
    pub leader: Link,
}

impl Peers for Follower {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    async fn sum(&self, values: Vec<f32>) -> Result<Vec<f32>, TrainError> {
        (self.leader.send)(values);
        self.leader.heard.recv().await.map_err(|_| lost())
    }

    fn hand_out(&self, _: StageShare, _: &mut dyn Iterator<Item = ShareRows>) {}
}

fn lost() -> TrainError {
    TrainError::PeerLost
}
