//! D2: power loss. Producers append with `acks=all` semantics (append, then
//! sync, then count the batch as acknowledged) while the simulated disk loses
//! power, or the process is killed, at random moments; every acknowledged
//! batch, and every batch below the durable offset a recovered log claims,
//! must be found after the next power loss. A control run with fsync
//! disabled must lose acknowledged batches, proving the check can fail.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use futures_lite::future::yield_now;

use super::*;
use crate::log::SimulatedDisk;

const DIR: &str = "/sim/events-0";
const PRODUCERS: u64 = 4;

/// Acknowledged batches by base offset.
type Acked = Rc<RefCell<BTreeMap<i64, Vec<u8>>>>;

fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

/// One power cycle: open (recover), produce until the power is cut or the
/// process killed after a random number of scheduler turns.
async fn power_cycle(
    sim: &SimulatedDisk,
    acked: &Acked,
    round: u64,
    rng: &mut u64,
    may_restart: bool,
) {
    let log = Rc::new(
        PartitionLog::open(DIR, small_config(), sim.disk())
            .await
            .expect("recovery succeeds"),
    );
    // What recovery claims durable is as good as acknowledged.
    for batch in read_all(&log).await {
        let h = header(&batch);
        if h.last_offset() < log.durable_offset() {
            acked.borrow_mut().insert(h.base_offset, batch);
        }
    }
    let tasks: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let log = Rc::clone(&log);
            let acked = Rc::clone(acked);
            glommio::spawn_local(async move {
                for i in 0.. {
                    let tag = round * 1_000_000 + producer * 10_000 + i;
                    let batch =
                        test_batch(tag, 1 + (tag % 5) as usize, CODECS[(tag % 5) as usize], 0);
                    let Ok(info) = append(&log, batch.clone()).await else {
                        return;
                    };
                    if log.sync().await.is_err() {
                        return;
                    }
                    acked.borrow_mut().insert(info.base_offset, batch);
                }
            })
        })
        .collect();
    // One cut in four comes early, before the first sync of the cycle.
    let turns = if next(rng).is_multiple_of(4) {
        next(rng) % 16
    } else {
        next(rng) % 400
    };
    for _ in 0..turns {
        yield_now().await;
    }
    if may_restart && next(rng) % 5 < 2 {
        sim.restart();
    } else {
        sim.crash();
    }
    for task in tasks {
        task.await;
    }
}

/// Reopens after the last crash and returns the acknowledged batches that
/// are missing or different. Everything read must pass its CRC and be dense.
async fn missing_after_recovery(sim: &SimulatedDisk, acked: &Acked) -> usize {
    let log = PartitionLog::open(DIR, small_config(), sim.disk())
        .await
        .expect("recovery succeeds");
    let stored = read_all(&log).await;
    assert_dense(&log, &stored);
    let by_base: BTreeMap<i64, &Vec<u8>> =
        stored.iter().map(|b| (header(b).base_offset, b)).collect();
    acked
        .borrow()
        .iter()
        .filter(|(base, batch)| !by_base.get(base).is_some_and(|s| same_batch(s, batch)))
        .count()
}

#[test]
fn acknowledged_batches_survive_power_loss() {
    run(|| async {
        let mut total_acked = 0;
        for seed in 1..=25u64 {
            let sim = SimulatedDisk::new(seed);
            let acked: Acked = Rc::default();
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for round in 0..6 {
                power_cycle(&sim, &acked, round, &mut rng, true).await;
                let missing = missing_after_recovery(&sim, &acked).await;
                assert_eq!(
                    missing, 0,
                    "seed {seed} round {round}: acknowledged batches lost"
                );
            }
            total_acked += acked.borrow().len();
        }
        assert!(
            total_acked > 500,
            "the scenario acknowledged {total_acked} batches"
        );
    });
}

#[test]
fn without_fsync_power_loss_loses_acknowledged_batches() {
    run(|| async {
        let mut lost = 0;
        let mut total_acked = 0;
        for seed in 1..=5u64 {
            let sim = SimulatedDisk::without_fsync(seed);
            let acked: Acked = Rc::default();
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            power_cycle(&sim, &acked, 0, &mut rng, false).await;
            total_acked += acked.borrow().len();
            lost += missing_after_recovery(&sim, &acked).await;
        }
        assert!(total_acked > 0);
        assert!(
            lost > 0,
            "the control run lost nothing: the test could not fail"
        );
    });
}
