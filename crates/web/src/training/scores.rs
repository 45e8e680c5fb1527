//! After a run: its scores (accuracy, per class, the confusion matrix), the photos it left out,
//! and what the ImageNet model alone says about the validation photos.

use std::sync::Arc;

use leptos::prelude::*;

use super::confusion::Confusion;
use super::head::HeadControls;
use super::publish::PublishControls;
use super::state::{
    LabelCheck, Prepared, RunResult, TrainPhoto, Training, percent, photos, use_training,
};
use crate::notice::Notice;
use crate::photos::jpeg_url;
use afinar_vocabulary::{LeftOut, MANY_CLASSES, Mistake, RowPrediction, weakest_first};
use afinar_web::roster::StoredPrepared;

impl Training {
    /// The embedding of a photo, if ready.
    fn embedding(self, id: u32) -> Option<(TrainPhoto, Arc<StoredPrepared>)> {
        self.photos.with(|l| {
            l.iter()
                .find(|p| p.id == id)
                .and_then(|p| match p.state.get() {
                    Prepared::Ready(e) => Some((p.clone(), e)),
                    _ => None,
                })
        })
    }
}

/// The last run's scores, and the head in use.
#[component]
pub fn Results() -> impl IntoView {
    let training = use_training();
    view! {
        <div class="results">
            <Show when=move || training.result.with(Option::is_some)>
                {move || training.result.get().map(|result| view! { <Scores result /> })}
            </Show>
            <HeadControls />
            <PublishControls />
        </div>
    }
}

#[component]
fn Scores(result: RunResult) -> impl IntoView {
    let o = result.outcome;
    // The confusion matrix cell whose photos are shown: (true class, predicted class).
    let selected = RwSignal::new(None::<(usize, usize)>);
    let helper_memory: Vec<String> = o.helper_memory_bytes.iter().map(u64::to_string).collect();
    let helper_memory = helper_memory.join(",");
    view! {
        <div class="scores">
            <p
                class="training-done"
                data-testid="training-done"
                data-worker-memory=o.wasm_memory_bytes.to_string()
                data-helper-memory=helper_memory
            >
                {format!(
                    "Trained on {} in {:.1} s ({} epochs; kept the weights of epoch {}, the best on the validation photos). Memory: {}.",
                    o.backend.name(),
                    o.train_ms / 1000.0,
                    o.epochs.len(),
                    o.kept_epoch,
                    o.memory_summary(),
                )}
            </p>
            <p class="big">
                "Validation accuracy: "
                <strong data-testid="val-accuracy">{o.val_accuracy.map_or("– (no validation photos)".to_string(), percent)}</strong>
                {o.frozen_val_accuracy.map(|f| format!(" (head alone: {})", percent(f)))}
            </p>
            <LeftOutNotice left_out=o.left_out />
            <div class="score-grid">
                <PerClass classes=o.classes.clone() recall=o.per_class precision=o.precision f1=o.f1 confusion=o.confusion.clone() />
                <Confusion classes=o.classes.clone() confusion=o.confusion selected />
            </div>
            <CellPhotos classes=o.classes.clone() predictions=o.val_predictions photo_ids=result.photo_ids.clone() selected />
            <LabelsToCheck classes=o.classes.clone() check=result.labels photo_ids=result.photo_ids.clone() />
            <Mistakes classes=o.classes.clone() mistakes=o.mistakes photo_ids=result.photo_ids.clone() />
            <ZeroShot classes=o.classes val_rows=o.val_rows photo_ids=result.photo_ids />
        </div>
    }
}

/// The photos the run did not use, each with the reason (it names the file).
#[component]
fn LeftOutNotice(left_out: Vec<LeftOut>) -> impl IntoView {
    let message = RwSignal::new((!left_out.is_empty()).then(|| match left_out.len() {
        1 => "Left out of training (1 photo):".to_string(),
        n => format!("Left out of training ({n} photos):"),
    }));
    let reasons: Vec<String> = left_out.into_iter().map(|l| l.reason).collect();
    view! {
        <Notice message testid="left-out">
            <ul class="left-out-list">
                {reasons.iter().map(|reason| view! { <li>{reason.clone()}</li> }).collect_view()}
            </ul>
        </Notice>
    }
}

/// Precision, recall and F1 per class, with the count of validation photos.
#[component]
fn PerClass(
    classes: Vec<String>,
    recall: Vec<f64>,
    precision: Vec<f64>,
    f1: Vec<f64>,
    confusion: Vec<Vec<usize>>,
) -> impl IntoView {
    let cell = |v: Option<&f64>| v.map_or("–".to_string(), |v| percent(*v));
    // Many classes: the weakest first, in a box of their own, so that they can be found.
    let many = classes.len() > MANY_CLASSES;
    let order = match many {
        true => weakest_first(&recall, &f1),
        false => (0..classes.len()).collect(),
    };
    let caption = match many {
        true => "Per class (validation photos; the weakest first)",
        false => "Per class (validation photos)",
    };
    view! {
        <div class="per-class-box" class:many=many>
        <table class="per-class" data-testid="per-class">
            <caption>{caption}</caption>
            <thead>
                <tr>
                    <th scope="col">"Class"</th>
                    <th scope="col" title="The share of the class's validation photos the model gets right">"Accuracy (recall)"</th>
                    <th scope="col">"Precision"</th>
                    <th scope="col">"F1"</th>
                    <th scope="col">"Photos"</th>
                </tr>
            </thead>
            <tbody>
                {order
                    .into_iter()
                    .filter_map(|c| Some((c, classes.get(c)?.clone())))
                    .map(|(c, name)| {
                        let r = recall.get(c).copied().unwrap_or(0.0);
                        let photos: usize = confusion.get(c).map_or(0, |row| row.iter().sum());
                        view! {
                            <tr>
                                <th scope="row">{name}</th>
                                <td><span class="bar"><span style:width=format!("{:.1}%", r * 100.0)></span></span>{percent(r)}</td>
                                <td>{cell(precision.get(c))}</td>
                                <td>{f1.get(c).map_or("–".to_string(), |f| format!("{f:.2}"))}</td>
                                <td>{photos}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        </div>
    }
}

/// Most mistakes shown: the most confident ones are the ones worth a look.
const MISTAKES_SHOWN: usize = 24;

/// Validation photos the model gets wrong, the most confident first: a wrong label, or a hard
/// photo.
#[component]
fn Mistakes(classes: Vec<String>, mistakes: Vec<Mistake>, photo_ids: Vec<u32>) -> impl IntoView {
    let training = use_training();
    let shown = mistakes.len().min(MISTAKES_SHOWN);
    let total = mistakes.len();
    let class_name = move |c: usize| classes.get(c).cloned().unwrap_or_default();
    let items: Vec<_> = mistakes
        .into_iter()
        .take(MISTAKES_SHOWN)
        .filter_map(|m| {
            let id = *photo_ids.get(m.row)?;
            let (photo, e) = training.embedding(id)?;
            let label = training
                .classes
                .with(|l| {
                    l.iter()
                        .find(|c| c.id == photo.class_id)
                        .map(|c| c.name.clone())
                })
                .unwrap_or_default();
            Some((
                photo.name,
                label,
                class_name(m.predicted),
                m.confidence,
                jpeg_url(&e.embedding.thumbnail_jpeg),
            ))
        })
        .collect();
    (total > 0).then(|| view! {
        <details class="mistakes" data-testid="mistakes" open>
            <summary>{format!("Validation photos it gets wrong ({total}; the {shown} most confident first)")}</summary>
            <ul class="zero-shot-list">
                {items.into_iter().map(|(name, label, predicted, confidence, url)| view! {
                    <li>
                        {url.map(|u| view! { <img src=u alt=name.clone() /> })}
                        <span>
                            <strong>{format!("{predicted} ({:.0} %)", confidence * 100.0)}</strong><br />
                            <span class="muted">{format!("labelled {label} · {name}")}</span>
                        </span>
                    </li>
                }).collect_view()}
            </ul>
        </details>
    })
}

/// A photo of the last run as a list item: its thumbnail, a first line and a muted second one.
#[component]
fn PhotoItem(
    url: Option<String>,
    name: String,
    first: String,
    second: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <li>
            {url.map(|u| view! { <img src=u alt=name.clone() /> })}
            <span>
                <strong>{first}</strong><br />
                <span class="muted">{second}</span>
                {children.map(|c| c())}
            </span>
        </li>
    }
}

/// The validation photos behind the chosen cell of the confusion matrix.
#[component]
fn CellPhotos(
    classes: Vec<String>,
    predictions: Vec<RowPrediction>,
    photo_ids: Vec<u32>,
    selected: RwSignal<Option<(usize, usize)>>,
) -> impl IntoView {
    let training = use_training();
    let name = move |c: usize| classes.get(c).cloned().unwrap_or_default();
    move || {
        let (t, p) = selected.get()?;
        let items: Vec<_> = predictions
            .iter()
            .filter(|r| r.label == t && r.predicted == p)
            .filter_map(|r| {
                let (photo, e) = training.embedding(*photo_ids.get(r.row)?)?;
                let url = jpeg_url(&e.embedding.thumbnail_jpeg);
                Some((photo.name, r.confidence, url))
            })
            .collect();
        let title = format!("{}: {} predicted {}", name(t), photos(items.len()), name(p));
        let predicted = name(p);
        Some(view! {
            <div class="cell-photos" data-testid="cell-photos">
                <h4>{title}</h4>
                <ul class="zero-shot-list">
                    {items.into_iter().map(|(photo, confidence, url)| view! {
                        <PhotoItem url name=photo.clone() first=format!("{predicted} ({:.0} %)", confidence * 100.0) second=photo />
                    }).collect_view()}
                </ul>
                <button class="subtle" on:click=move |_| selected.set(None)>"Close"</button>
            </div>
        })
    }
}

/// Most photos listed under "Labels to check".
const DISPUTED_SHOWN: usize = 24;

impl Training {
    /// Moves a photo to another class (its features stay: they do not depend on the class).
    fn move_photo(self, id: u32, class_id: u32) {
        self.photos.update(|l| {
            if let Some(p) = l.iter_mut().find(|p| p.id == id) {
                p.class_id = class_id;
            }
        });
        self.save_photo(id);
    }

    /// The id of the class called `name` (tracked).
    fn class_at(self, name: &str) -> Option<u32> {
        self.classes
            .with(|l| l.iter().find(|c| c.name == name).map(|c| c.id))
    }
}

/// Photos whose label the model most confidently disputes (each scored by a head trained
/// without it), with one click to move a photo to the class it suggests or to remove it.
#[component]
fn LabelsToCheck(classes: Vec<String>, check: LabelCheck, photo_ids: Vec<u32>) -> impl IntoView {
    let training = use_training();
    let disputed = match check {
        LabelCheck::Done(disputed) => disputed,
        LabelCheck::Checking => {
            return view! {
                <p class="muted" data-testid="labels-status" role="status">
                    "Checking the labels: each photo is scored by models trained without it…"
                </p>
            }
            .into_any();
        }
        LabelCheck::Failed(message) => {
            return view! { <p class="muted" data-testid="labels-status">{message}</p> }.into_any();
        }
    };
    let total = disputed.len();
    let items: Vec<_> = disputed
        .into_iter()
        .take(DISPUTED_SHOWN)
        .filter_map(|d| Some((*photo_ids.get(d.row)?, d)))
        .collect();
    let classes = StoredValue::new(classes);
    let class_name = move |c: usize| classes.with_value(|l| l.get(c).cloned().unwrap_or_default());
    if total == 0 {
        return view! {
            <p class="muted" data-testid="labels-status">
                "Labels checked: models trained without each photo agree with every label."
            </p>
        }
        .into_any();
    }
    view! {
        <details class="mistakes labels-to-check" data-testid="labels-to-check" open>
            <summary>{format!(
                "Labels to check: {total} photos a model trained without them puts in another class (the {} most confident first)",
                items.len()
            )}</summary>
            <ul class="zero-shot-list">
                {items.into_iter().map(|(id, d)| {
                    let suggested = class_name(d.suggested);
                    let target = suggested.clone();
                    // Tracked: the row changes once the photo is moved or removed.
                    move || {
                        let (photo, e) = training.embedding(id)?;
                        let label = training
                            .classes
                            .with(|l| l.iter().find(|c| c.id == photo.class_id).map(|c| c.name.clone()))
                            .unwrap_or_default();
                        let target_id = training.class_at(&target);
                        let moved = target_id == Some(photo.class_id);
                        let second = format!(
                            "labelled {label} ({:.0} %) · {}",
                            d.label_probability * 100.0,
                            photo.name
                        );
                        let url = jpeg_url(&e.embedding.thumbnail_jpeg);
                        let first = format!("{suggested}? ({:.0} %)", d.confidence * 100.0);
                        let (move_text, moved_text) =
                            (format!("Move to {target}"), format!("Moved to {target}"));
                        Some(view! {
                            <PhotoItem url name=photo.name.clone() first second>
                                <span class="check-actions" data-testid="label-to-check" data-name=photo.name.clone()>
                                    {match (moved, target_id) {
                                        (false, Some(target_id)) => view! {
                                            <button class="subtle" data-testid="move-photo" on:click=move |_| training.move_photo(id, target_id)>
                                                {move_text}
                                            </button>
                                        }.into_any(),
                                        (true, _) => view! { <span class="muted">{moved_text}</span> }.into_any(),
                                        _ => ().into_any(),
                                    }}
                                    <button class="subtle" data-testid="remove-photo" aria-label=format!("Remove {}", photo.name) on:click=move |_| training.remove_photo(id)>
                                        "Remove"
                                    </button>
                                </span>
                            </PhotoItem>
                        })
                    }
                }).collect_view()}
            </ul>
            <p class="muted">"After moving or removing photos, press Train again."</p>
        </details>
    }
    .into_any()
}

/// What the ImageNet head alone says about (up to 24 of) the validation photos.
#[component]
fn ZeroShot(classes: Vec<String>, val_rows: Vec<usize>, photo_ids: Vec<u32>) -> impl IntoView {
    let training = use_training();
    let label_of = move |photo: &TrainPhoto| {
        training
            .classes
            .with(|l| {
                l.iter()
                    .find(|c| c.id == photo.class_id)
                    .map(|c| c.name.clone())
            })
            .or_else(|| classes.first().cloned())
            .unwrap_or_default()
    };
    let photos: Vec<u32> = val_rows
        .iter()
        .filter_map(|&row| photo_ids.get(row).copied())
        .take(24)
        .collect();
    view! {
        <details class="zero-shot">
            <summary>"What the ImageNet model alone says about the validation photos"</summary>
            <ul class="zero-shot-list">
                {photos
                    .into_iter()
                    .filter_map(|id| training.embedding(id))
                    .map(|(photo, e)| {
                        let truth = label_of(&photo);
                        let top = e.embedding.imagenet.first().cloned();
                        let url = jpeg_url(&e.embedding.thumbnail_jpeg);
                        view! {
                            <li>
                                {url.map(|u| view! { <img src=u alt="" /> })}
                                <span><strong>{truth}</strong><br />
                                    <span class="muted">{top.map_or("–".into(), |p| format!("ImageNet: {} ({:.0} %)", p.label, p.prob * 100.0))}</span>
                                </span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </details>
    }
}
