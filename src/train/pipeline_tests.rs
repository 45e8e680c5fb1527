//! A follower's share is handed out as the first worker holds it: its training rows in pieces
//! that make them whole, its validation rows with it.

use std::cell::RefCell;

use super::{Rows, Share, ShareRows, StageShare};
use crate::train::TrainError;
use crate::train::peers::Peers;

/// Keeps what it is handed.
#[derive(Default)]
struct Handed(RefCell<Vec<(StageShare, Vec<ShareRows>)>>);

impl Peers for Handed {
    fn rank(&self) -> usize {
        0
    }

    fn ranks(&self) -> usize {
        2
    }

    async fn sum(&self, values: Vec<f32>) -> Result<Vec<f32>, TrainError> {
        Ok(values)
    }

    fn hand_out(&self, share: StageShare, pieces: &mut dyn Iterator<Item = ShareRows>) {
        self.0.borrow_mut().push((share, pieces.collect()));
    }
}

#[test]
fn a_followers_rows_go_in_pieces_that_make_its_share_whole() {
    const PHOTOS: usize = 700;
    const WIDTH: usize = 3;
    const VIEWS: usize = 2;
    let boundary: Vec<f32> = (0..PHOTOS * WIDTH).map(|i| i as f32).collect();
    let augmented: Vec<f32> = (0..PHOTOS * VIEWS * WIDTH).map(|i| -(i as f32)).collect();
    let labels: Vec<usize> = (0..PHOTOS).map(|i| i % 4).collect();
    let rows = Rows {
        boundary: &boundary,
        augmented: Some(&augmented),
        views: VIEWS,
        labels: &labels,
        classes: 4,
    };
    // Every fifth photo held out for validation.
    let samples: (Vec<usize>, Vec<usize>) = (0..PHOTOS).partition(|i| i % 5 != 0);
    let share = Share {
        rank: 1,
        ranks: 2,
        photos: samples.0.len(),
    };
    let handed = Handed::default();
    rows.hand_out(&handed, share, &samples, vec![0.5; 7]);
    let (got, pieces) = handed.0.into_inner().pop().expect("handed out");

    let held = share.pick(&samples.0);
    assert_eq!(
        got.labels,
        held.iter().map(|&s| labels[s]).collect::<Vec<_>>()
    );
    assert!(
        got.boundary.is_empty() && got.augmented.is_none(),
        "the rows go in pieces"
    );
    assert!(pieces.len() > 1, "{} pieces", pieces.len());
    let mut next = 0;
    for piece in &pieces {
        assert_eq!(piece.first, next);
        next += piece.count;
    }
    assert_eq!(next, held.len());
    let whole: Vec<f32> = pieces.iter().flat_map(|p| p.boundary.clone()).collect();
    let expected: Vec<f32> = held
        .iter()
        .flat_map(|&s| boundary[s * WIDTH..(s + 1) * WIDTH].to_vec())
        .collect();
    assert_eq!(whole, expected);
    let views: Vec<f32> = pieces
        .iter()
        .flat_map(|p| p.augmented.clone().expect("views"))
        .collect();
    let per = VIEWS * WIDTH;
    let expected: Vec<f32> = held
        .iter()
        .flat_map(|&s| augmented[s * per..(s + 1) * per].to_vec())
        .collect();
    assert_eq!(views, expected);

    let val_held = Share {
        photos: samples.1.len(),
        ..share
    }
    .pick(&samples.1);
    assert_eq!(got.val_photos, samples.1.len());
    let expected: Vec<f32> = val_held
        .iter()
        .flat_map(|&s| boundary[s * WIDTH..(s + 1) * WIDTH].to_vec())
        .collect();
    assert_eq!(got.val_boundary, expected);
}
