//! A run's confusion on its validation photos: the whole matrix for a few classes, the most
//! confused pairs for many. Either way, choosing a cell or a pair lists its photos.

use leptos::prelude::*;

use super::state::photos;
use afinar_vocabulary::{CONFUSED_PAIRS_SHOWN, MANY_CLASSES, most_confused};

/// `confusion[true][predicted]`: the grid, or the most confused pairs past
/// [`MANY_CLASSES`] classes. `selected` is the chosen cell: (true class, predicted class).
#[component]
pub fn Confusion(
    classes: Vec<String>,
    confusion: Vec<Vec<usize>>,
    selected: RwSignal<Option<(usize, usize)>>,
) -> impl IntoView {
    match classes.len() > MANY_CLASSES {
        true => view! { <MostConfused classes confusion selected /> }.into_any(),
        false => view! { <Grid classes confusion selected /> }.into_any(),
    }
}

/// The off-diagonal cells with the most photos, as buttons.
#[component]
fn MostConfused(
    classes: Vec<String>,
    confusion: Vec<Vec<usize>>,
    selected: RwSignal<Option<(usize, usize)>>,
) -> impl IntoView {
    let pairs = most_confused(&confusion, CONFUSED_PAIRS_SHOWN);
    let total = classes.len();
    let name = move |c: usize| classes.get(c).cloned().unwrap_or_default();
    let of_class = move |c: usize| confusion.get(c).map_or(0, |row| row.iter().sum::<usize>());
    let caption = match pairs.len() {
        0 => "No validation photo is confused with another class.".to_string(),
        n => format!(
            "The {n} most confused pairs of classes (of {} classes; choose one to see its photos)",
            total
        ),
    };
    view! {
        <figure class="confusion most-confused" data-testid="most-confused">
            <figcaption>{caption}</figcaption>
            <ol>
                {pairs.into_iter().map(|pair| {
                    let (t, p) = (pair.truth, pair.predicted);
                    let share = pair.count as f64 / of_class(t).max(1) as f64;
                    let text = format!(
                        "{} → {}: {} ({:.0} % of {})",
                        name(t), name(p), photos(pair.count), share * 100.0, name(t)
                    );
                    view! {
                        <li>
                            <button
                                class="subtle"
                                class:chosen=move || selected.get() == Some((t, p))
                                data-testid="confusion-pair"
                                data-cell=format!("{t}-{p}")
                                on:click=move |_| selected.set(Some((t, p)))
                            >
                                {text}
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </figure>
    }
}

/// `confusion[true][predicted]` as a grid of shaded cells.
#[component]
fn Grid(
    classes: Vec<String>,
    confusion: Vec<Vec<usize>>,
    selected: RwSignal<Option<(usize, usize)>>,
) -> impl IntoView {
    const CELL: f64 = 28.0;
    const LABEL_W: f64 = 90.0;
    let n = classes.len();
    let max_cell = confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let side = LABEL_W + CELL * n as f64 + 4.0;
    let names = classes.clone();
    let name = move |c: usize| names.get(c).cloned().unwrap_or_default();
    view! {
        <figure class="confusion" data-testid="confusion">
            <figcaption>"Confusion matrix (rows: true class, columns: predicted; choose a cell to see its photos)"</figcaption>
            <svg viewBox=format!("0 0 {side} {side}") role="img" aria-label="Confusion matrix">
                {classes
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let y = LABEL_W + CELL * i as f64 + CELL * 0.65;
                        let x = LABEL_W + CELL * i as f64 + CELL * 0.5;
                        view! {
                            <text x=LABEL_W - 4.0 y=y text-anchor="end" class="axis">{c.clone()}</text>
                            <text x=x y=LABEL_W - 4.0 text-anchor="start" class="axis" transform=format!("rotate(-60 {x} {})", LABEL_W - 4.0)>{c}</text>
                        }
                    })
                    .collect_view()}
                {confusion
                    .iter()
                    .enumerate()
                    .flat_map(|(t, row)| row.iter().enumerate().map(move |(p, &count)| (t, p, count)))
                    .map(|(t, p, count)| {
                        let x = LABEL_W + CELL * p as f64;
                        let y = LABEL_W + CELL * t as f64;
                        let shade = count as f64 / max_cell as f64;
                        let class = if t == p { "cell diag" } else { "cell" };
                        let label = format!("{count} {} photos predicted {}", name(t), name(p));
                        let title = label.clone();
                        let choose = move || selected.set(Some((t, p)));
                        view! {
                            // A cell is a button: its photos are listed below the matrix.
                            <g
                                class="cell-button"
                                class:chosen=move || selected.get() == Some((t, p))
                                role="button"
                                tabindex="0"
                                aria-label=label
                                data-testid="confusion-cell"
                                data-cell=format!("{t}-{p}")
                                on:click=move |_| choose()
                                on:keydown=move |ev| {
                                    if ev.key() == "Enter" || ev.key() == " " {
                                        ev.prevent_default();
                                        choose();
                                    }
                                }
                            >
                                <rect x=x y=y width=CELL - 1.0 height=CELL - 1.0 class=class style:fill-opacity=format!("{:.2}", 0.08 + 0.92 * shade)>
                                    <title>{title}</title>
                                </rect>
                                <text x=x + CELL / 2.0 y=y + CELL * 0.65 text-anchor="middle" class="count">{count.to_string()}</text>
                            </g>
                        }
                    })
                    .collect_view()}
            </svg>
        </figure>
    }
}
