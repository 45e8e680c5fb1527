//! Workers that share a stage's photos ([`super::peers`]) end with the weights and the
//! validation scores one worker reaches on all of them: leaders and followers on threads,
//! linked by channels.

use futures_lite::future::block_on;

use burn::optim::GradientsParams;
use burn::prelude::*;

use super::fit::{Held, Schedule, Stage, fit, follow};
use super::flat::{flat_weights, with_weights};
use super::labelled::LabelledFeatures;
use super::labelled::TrainError;
use super::peers::{Alone, Follower, Leader, Link, Peers, Share};
use crate::head::model::{Head, HeadConfig};
use crate::recipe::Recipe;

const WIDTH: usize = 24;
const PHOTOS: usize = 61;
/// Photos after the training ones, held out for validation.
const VAL_PHOTOS: usize = 23;
const VIEWS: usize = 2;

/// Rows whose class shows in a few of their values, and their labels.
fn rows() -> (Vec<f32>, Vec<f32>, Vec<usize>) {
    let mut state = 7u32;
    let mut next = move || {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let labels: Vec<usize> = (0..PHOTOS + VAL_PHOTOS).map(|i| i % 3).collect();
    let mut row = |label: usize| -> Vec<f32> {
        (0..WIDTH)
            .map(|j| next() + if j % 3 == label { 1.0 } else { 0.0 })
            .collect()
    };
    let plain = labels.iter().flat_map(|&l| row(l)).collect();
    let views = labels
        .iter()
        .flat_map(|&l| (0..VIEWS).flat_map(|_| row(l)).collect::<Vec<_>>())
        .collect();
    (plain, views, labels)
}

fn recipe() -> Recipe {
    Recipe::new()
        .with_batch_size(8)
        .with_hidden(16)
        .with_keep_best(false)
        .with_patience(None)
}

const SCHEDULE: Schedule = Schedule {
    epochs: 3,
    learning_rate: 0.01,
    first_epoch: 1,
};

fn stage(device: &Device) -> Stage<Head, fn(&Head, Tensor<2>) -> Tensor<2>, RateGroups> {
    let head = HeadConfig::new(3)
        .with_input(WIDTH)
        .with_hidden(16)
        .init(&device.clone().autodiff());
    Stage {
        model: head,
        forward: Head::forward,
        rate_groups: |_, grads| vec![(1.0, grads)],
    }
}

type RateGroups = fn(&Head, GradientsParams) -> Vec<(f64, GradientsParams)>;

/// Trains on the share of `rank` of `ranks` workers, linked by `peers`: the weights it ends
/// with, and (the first worker) each epoch's validation accuracy and loss.
fn train_share<P: Peers>(rank: usize, ranks: usize, peers: &P) -> (Vec<f32>, Vec<(f64, f64)>) {
    let device = crate::device::cpu();
    let (plain, views, labels) = rows();
    let share = Share {
        rank,
        ranks,
        photos: PHOTOS,
    };
    let held: Vec<usize> = share.pick(&(0..PHOTOS).collect::<Vec<_>>());
    let rows = LabelledFeatures::new(&plain, &labels)
        .subset(&held)
        .with_augmented(&views, VIEWS);
    let held = Held { rows, share };
    let val_share = Share {
        photos: VAL_PHOTOS,
        ..share
    };
    let val_held: Vec<usize> = val_share.pick(&(PHOTOS..PHOTOS + VAL_PHOTOS).collect::<Vec<_>>());
    let val = Some(Held {
        rows: LabelledFeatures::new(&plain, &labels).subset(&val_held),
        share: val_share,
    });
    let recipe = recipe();
    block_on(async {
        let (model, scores) = if rank == 0 {
            let (model, reports, _) = fit(
                stage(&device),
                &recipe,
                &SCHEDULE,
                held,
                val,
                &device,
                peers,
                |_| true,
            )
            .await
            .expect("trains");
            let scores = reports
                .iter()
                .map(|r| (r.val_accuracy.expect("scored"), r.val_loss.expect("scored")))
                .collect();
            (model, scores)
        } else {
            let model = follow(
                stage(&device),
                &recipe,
                &SCHEDULE,
                held,
                val,
                &device,
                peers,
            );
            (model.await.expect("follows"), Vec::new())
        };
        (flat_weights(&model).await.expect("reads"), scores)
    })
}

type Ends = (
    async_channel::Sender<Vec<f32>>,
    async_channel::Receiver<Vec<f32>>,
);

/// One end of a link between two threads: sends on `ends.0`, hears `ends.1`.
fn link((send, heard): Ends) -> Link {
    Link {
        send: Box::new(move |v| {
            let _ = send.send_blocking(v);
        }),
        heard,
    }
}

/// Both ends of a link: the leader's and the follower's.
fn ends() -> (Ends, Ends) {
    let (up, heard_up) = async_channel::unbounded();
    let (down, heard_down) = async_channel::unbounded();
    ((down, heard_up), (up, heard_down))
}

#[test]
fn workers_sharing_the_photos_reach_the_weights_of_one_worker_on_all_of_them() {
    let (alone, alone_scores) = train_share(0, 1, &Alone);
    assert_eq!(alone_scores.len(), SCHEDULE.epochs);
    for ranks in [2, 3] {
        let (leader_ends, follower_ends): (Vec<Ends>, Vec<Ends>) =
            (1..ranks).map(|_| ends()).unzip();
        let followers: Vec<_> = follower_ends
            .into_iter()
            .enumerate()
            .map(|(i, ends)| {
                std::thread::spawn(move || {
                    let peers = Follower {
                        rank: i + 1,
                        ranks,
                        leader: link(ends),
                    };
                    train_share(peers.rank, ranks, &peers)
                })
            })
            .collect();
        let leader = Leader::new(leader_ends.into_iter().map(link).collect(), |_, _| {});
        let (led, led_scores) = train_share(0, ranks, &leader);
        drop(leader);
        for (epoch, (a, b)) in alone_scores.iter().zip(&led_scores).enumerate() {
            assert_eq!(
                a.0, b.0,
                "{ranks} workers: validation accuracy of epoch {epoch}"
            );
            assert!(
                (a.1 - b.1).abs() < 1e-5,
                "{ranks} workers: validation loss of epoch {epoch}: {} against {}",
                b.1,
                a.1
            );
        }
        assert_eq!(led.len(), alone.len());
        let largest = alone
            .iter()
            .zip(&led)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            largest < 1e-5,
            "{ranks} workers: weights differ by {largest}"
        );
        for follower in followers {
            let (theirs, _) = follower.join().expect("follower");
            assert_eq!(theirs, led, "every worker ends with the same weights");
        }
    }
}

#[test]
fn every_photo_is_held_by_exactly_one_worker() {
    for photos in [0, 1, 5, 61] {
        for ranks in 1..5 {
            let all: Vec<usize> = (0..photos).collect();
            let mut seen = Vec::new();
            for rank in 0..ranks {
                let share = Share {
                    rank,
                    ranks,
                    photos,
                };
                let held = share.pick(&all);
                assert_eq!(held.len(), share.held());
                for (row, &photo) in held.iter().enumerate() {
                    assert!(share.holds(photo));
                    assert_eq!(share.row(photo), row);
                }
                seen.extend(held);
            }
            seen.sort();
            assert_eq!(seen, all);
        }
    }
}

#[test]
fn a_follower_hears_when_the_first_worker_is_gone() {
    let (leader_ends, follower_ends) = ends();
    drop(leader_ends);
    let peers = Follower {
        rank: 1,
        ranks: 2,
        leader: link(follower_ends),
    };
    assert_eq!(block_on(peers.sum(vec![1.0])), Err(TrainError::PeerLost));
}

#[test]
fn weights_read_into_a_model_of_the_same_shape_and_not_another() {
    let device = crate::device::cpu();
    let head = |seed, hidden| {
        HeadConfig::new(3)
            .with_input(WIDTH)
            .with_hidden(hidden)
            .with_seed(seed)
            .init(&device)
    };
    let weights = block_on(flat_weights(&head(1, 16))).expect("reads");
    let loaded = with_weights(head(2, 16), &weights).expect("fits");
    assert_eq!(block_on(flat_weights(&loaded)).expect("reads"), weights);
    assert!(with_weights(head(2, 8), &weights).is_none());
}
