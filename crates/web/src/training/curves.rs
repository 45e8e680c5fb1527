//! Loss and accuracy per epoch, drawn as the run goes.

use leptos::prelude::*;

use super::state::{percent, use_training};

/// Loss and accuracy per epoch, train (solid) and validation (dashed).
#[component]
pub fn Curves() -> impl IntoView {
    const W: f64 = 300.0;
    const H: f64 = 120.0;
    let training = use_training();
    let line = |points: Vec<(usize, f64)>, total: usize, top: f64| -> String {
        points
            .iter()
            .map(|(epoch, v)| {
                let x = if total <= 1 {
                    W / 2.0
                } else {
                    (*epoch as f64 - 1.0) / (total as f64 - 1.0) * W
                };
                let y = H - (v / top).clamp(0.0, 1.0) * H;
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let chart = move |title: &'static str, accuracy: bool| {
        let epochs = training.epochs.get();
        let total = epochs.last().map_or(1, |e| e.total_epochs);
        // The epoch whose weights the finished run kept, when these curves are its.
        let kept = training.result.with(|r| {
            r.as_ref()
                .filter(|r| r.outcome.epochs.len() == epochs.len())
                .map(|r| r.outcome.kept_epoch)
                .filter(|&k| k > 0)
        });
        let x_of = |epoch: usize| {
            if total <= 1 {
                W / 2.0
            } else {
                (epoch as f64 - 1.0) / (total as f64 - 1.0) * W
            }
        };
        let train: Vec<(usize, f64)> = epochs
            .iter()
            .map(|e| {
                (
                    e.epoch,
                    if accuracy {
                        e.train_accuracy
                    } else {
                        e.train_loss
                    },
                )
            })
            .collect();
        let val: Vec<(usize, f64)> = epochs
            .iter()
            .filter_map(|e| {
                Some((
                    e.epoch,
                    if accuracy {
                        e.val_accuracy?
                    } else {
                        e.val_loss?
                    },
                ))
            })
            .collect();
        let top = if accuracy {
            1.0
        } else {
            train
                .iter()
                .chain(&val)
                .map(|(_, v)| *v)
                .fold(0.0f64, f64::max)
                .max(1e-6)
        };
        let last = |series: &[(usize, f64)]| {
            series.last().map_or("–".to_string(), |(_, v)| {
                if accuracy {
                    percent(*v)
                } else {
                    format!("{v:.3}")
                }
            })
        };
        view! {
            <figure class="curve">
                <figcaption>
                    {title}
                    <span class="muted">
                        {format!(" · epoch {}: ", epochs.last().map_or(0, |e| e.epoch))}
                        <span class="key train">"train"</span>
                        {format!(" {} · ", last(&train))}
                        <span class="key val">"validation"</span>
                        {format!(" {}", last(&val))}
                    </span>
                    {kept.map(|k| view! { <span class="muted">{format!(" · kept epoch {k} (marked)")}</span> })}
                </figcaption>
                <svg viewBox=format!("-4 -4 {} {}", W + 8.0, H + 8.0) role="img" aria-label=title>
                    <rect x="0" y="0" width=W height=H class="plot" />
                    <polyline class="train-line" points=line(train, total, top) />
                    <polyline class="val-line" points=line(val, total, top) />
                    {kept.map(|k| view! {
                        <line class="kept-line" data-testid="kept-epoch" x1=x_of(k) x2=x_of(k) y1="0" y2=H>
                            <title>{format!("kept epoch {k}")}</title>
                        </line>
                    })}
                </svg>
            </figure>
        }
    };
    view! {
        <Show when=move || !training.epochs.with(Vec::is_empty)>
            <div class="curves" data-testid="curves">
                {move || chart("Loss", false)}
                {move || chart("Accuracy", true)}
            </div>
        </Show>
    }
}
