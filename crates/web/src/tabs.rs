//! One tab at a time keeps the training photos: two tabs that both wrote to the store would
//! overwrite each other's photos and class lists.
//!
//! The newest tab takes over, as a person who opens the page again expects: it tells the others
//! on a `BroadcastChannel`, and waits for the Web Lock that the tab keeping the store holds. That
//! tab finishes what it is doing (a run, a project being opened, writes under way), lets go and
//! says where the work went; its own *Use it here* reloads it, which takes over again. A tab that
//! closes or crashes lets go of the lock with it. Where the browser has no Web Locks, each tab
//! keeps the store as before.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BroadcastChannel, MessageEvent};

/// The lock the tab keeping the store holds.
const LOCK: &str = "afinar-store";
/// Where a new tab asks the others to let go (a message with the time it asked) and hears
/// that it must wait ([`FINISHING`]).
const CHANNEL: &str = "afinar-tabs";
const FINISHING: &str = "finishing";

/// Where this tab stands with the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Turn {
    /// Asking for the store (a moment, unless another tab has work to finish).
    Claiming,
    /// Another tab keeps the store until it has finished its work.
    Waiting,
    /// This tab keeps the store.
    Mine,
    /// A newer tab keeps it now.
    Elsewhere,
}

/// How far this tab's claim has come.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Claim {
    Waiting,
    /// Asked to let go before the lock came: it is let go as soon as it comes.
    AskedEarly,
    Held,
    LetGo,
}

/// A future run when a newer tab asks for the store; the lock is let go when it ends.
pub type LetGo = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()>>>>;

/// Claims the store for this tab: `granted` runs once it is this tab's (at once where the
/// browser has no Web Locks); when a newer tab claims it, `let_go` runs and the lock is
/// released when its future ends. `turn` hears each change.
pub fn claim(granted: impl FnOnce() + 'static, let_go: LetGo, turn: impl Fn(Turn) + 'static) {
    let locks = Reflect::get(
        &web_sys::window().map(|w| w.navigator()).into(),
        &"locks".into(),
    )
    .ok()
    .filter(|l| !l.is_undefined() && !l.is_null());
    let request = locks.as_ref().and_then(|locks| {
        Reflect::get(locks, &"request".into())
            .ok()?
            .dyn_into::<Function>()
            .ok()
    });
    let channel = BroadcastChannel::new(CHANNEL).ok();
    let (Some(locks), Some(request), Some(channel)) = (locks, request, channel) else {
        turn(Turn::Mine);
        granted();
        return;
    };
    let claim = Rc::new(Cell::new(Claim::Waiting));
    // When this tab asked: a claim made before it is not a newer tab's, and is let be (two
    // tabs that start together would otherwise each give way to the other).
    let asked_at = js_sys::Date::now() + js_sys::Math::random();
    // Resolving it lets go of the lock.
    let release: Rc<RefCell<Option<Function>>> = Rc::default();
    let turn: Rc<dyn Fn(Turn)> = Rc::new(turn);
    turn(Turn::Claiming);

    let hand_over = {
        let (claim, release, turn) = (claim.clone(), release.clone(), turn.clone());
        move || {
            claim.set(Claim::LetGo);
            turn(Turn::Elsewhere);
            if let Some(resolve) = release.borrow_mut().take() {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        }
    };
    let take_it = {
        let (claim, turn) = (claim.clone(), turn.clone());
        let granted = RefCell::new(Some(granted));
        move || {
            claim.set(Claim::Held);
            turn(Turn::Mine);
            if let Some(granted) = granted.borrow_mut().take() {
                granted();
            }
        }
    };
    let on_message = {
        let (claim, hand_over, turn) = (claim.clone(), hand_over.clone(), turn.clone());
        Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
            let data = message.data();
            if data.as_string().as_deref() == Some(FINISHING) {
                if claim.get() == Claim::Waiting {
                    turn(Turn::Waiting);
                }
                return;
            }
            if data
                .as_f64()
                .is_none_or(|their_claim| their_claim <= asked_at)
            {
                return;
            }
            match claim.get() {
                Claim::Waiting => claim.set(Claim::AskedEarly),
                Claim::Held => {
                    // Once: a further claim while this tab finishes changes nothing.
                    claim.set(Claim::LetGo);
                    let (done, hand_over) = (let_go(), hand_over.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        done.await;
                        hand_over();
                    });
                }
                Claim::AskedEarly | Claim::LetGo => {}
            }
        })
    };
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    let take_it = Rc::new(take_it);
    let on_granted = {
        let (claim, take_it) = (claim.clone(), take_it.clone());
        Closure::<dyn FnMut(JsValue) -> Promise>::new(move |_lock: JsValue| {
            let held = Promise::new(&mut |resolve, _reject| {
                *release.borrow_mut() = Some(resolve);
            });
            match claim.get() {
                Claim::AskedEarly => hand_over(),
                _ => take_it(),
            }
            held
        })
    };
    // A browser that refuses the lock (an opaque origin, for one) still gets a working page:
    // this tab keeps the store, as before Web Locks.
    let refused = move || {
        if matches!(claim.get(), Claim::Waiting | Claim::AskedEarly) {
            take_it();
        }
    };
    let _ = channel.post_message(&asked_at.into());
    let requested = request.call2(&locks, &LOCK.into(), on_granted.as_ref().unchecked_ref());
    let on_refused = Closure::<dyn FnMut(JsValue)>::new({
        let refused = refused.clone();
        move |_error: JsValue| refused()
    });
    match requested {
        Ok(held) => drop(held.unchecked_into::<Promise>().catch(&on_refused)),
        Err(_) => refused(),
    }
    // They live as long as the page: the channel must keep hearing newer tabs.
    on_message.forget();
    on_granted.forget();
    on_refused.forget();
    std::mem::forget(channel);
}

/// Tells the tab that asked for the store that this one has work to finish first.
pub fn say_finishing() {
    if let Ok(channel) = BroadcastChannel::new(CHANNEL) {
        let _ = channel.post_message(&FINISHING.into());
        channel.close();
    }
}
