//! The attempt schedule behind login and client-secret throttling: one slot per key, taken
//! atomically, and the back-off recorded by the caller.

use latchkey::model::{AttemptEnd, AttemptSlot};

use crate::TestDb;
use crate::flow::NOW;

const LEASE: i64 = 10;
const WINDOW: i64 = 900;

async fn concurrent_attempts_get_one_slot_and_the_back_off_holds(db: TestDb) {
    let store = db.store.clone();
    let tries: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.begin_attempt("k", NOW, LEASE, WINDOW).await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for attempt in tries {
        match attempt.await.unwrap() {
            AttemptSlot::Granted { failures } => {
                assert_eq!(failures, 0);
                granted += 1;
            }
            other => assert_eq!(other, AttemptSlot::Busy),
        }
    }
    assert_eq!(granted, 1, "exactly one concurrent attempt holds the slot");
    // A failure recorded with its back-off: refused until then, then granted with the count.
    let failed = AttemptEnd::Failed { failures: 6, next_at: NOW + 5 };
    store.end_attempt("k", failed, NOW).await.unwrap();
    assert_eq!(
        store.begin_attempt("k", NOW + 1, LEASE, WINDOW).await.unwrap(),
        AttemptSlot::Wait { until: NOW + 5 }
    );
    assert_eq!(
        store.begin_attempt("k", NOW + 5, LEASE, WINDOW).await.unwrap(),
        AttemptSlot::Granted { failures: 6 }
    );
    // A slot whose holder never came back is free again after the lease.
    assert_eq!(store.begin_attempt("k", NOW + 6, LEASE, WINDOW).await.unwrap(), AttemptSlot::Busy);
    assert_eq!(
        store.begin_attempt("k", NOW + 5 + LEASE, LEASE, WINDOW).await.unwrap(),
        AttemptSlot::Granted { failures: 6 }
    );
    // Other keys are independent; a success clears the record.
    assert!(matches!(
        store.begin_attempt("other", NOW, LEASE, WINDOW).await.unwrap(),
        AttemptSlot::Granted { .. }
    ));
    store.end_attempt("k", AttemptEnd::Succeeded, NOW + 20).await.unwrap();
    assert_eq!(
        store.begin_attempt("k", NOW + 21, LEASE, WINDOW).await.unwrap(),
        AttemptSlot::Granted { failures: 0 }
    );
}

async fn failures_older_than_the_window_are_forgotten(db: TestDb) {
    let store = &db.store;
    assert!(matches!(
        store.begin_attempt("k", NOW, LEASE, WINDOW).await.unwrap(),
        AttemptSlot::Granted { .. }
    ));
    let failed = AttemptEnd::Failed { failures: 9, next_at: NOW + 30 };
    store.end_attempt("k", failed, NOW).await.unwrap();
    assert_eq!(
        store.begin_attempt("k", NOW + 29, LEASE, WINDOW).await.unwrap(),
        AttemptSlot::Wait { until: NOW + 30 }
    );
    assert_eq!(
        store.begin_attempt("k", NOW + WINDOW, LEASE, WINDOW).await.unwrap(),
        AttemptSlot::Granted { failures: 0 },
        "a window without attempts forgets the failures"
    );
    // The purge drops schedules untouched for a day, and only those.
    store.end_attempt("k", AttemptEnd::Failed { failures: 1, next_at: NOW }, NOW).await.unwrap();
    assert_eq!(store.purge(NOW + 86_399).await.unwrap().attempts, 0);
    assert_eq!(store.purge(NOW + 86_400).await.unwrap().attempts, 1);
}

crate::on_both_engines!(
    concurrent_attempts_get_one_slot_and_the_back_off_holds,
    failures_older_than_the_window_are_forgotten,
);
