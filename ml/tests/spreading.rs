//! Property: spreading never adds more load to a slot than its room (so no slot rises above its
//! location's peak), and turns nothing away without a reason.

use std::collections::{HashMap, HashSet};

use laddkoll_ml::rank::LoadChange;
use laddkoll_ml::spread::{spread, Candidate};
use proptest::prelude::*;

type Spec = (i64, usize, i64, u16, f64, Vec<(i64, u16, f64)>);

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec(
        (
            0i64..30,
            0usize..3,
            0i64..5,
            0u16..6,
            0.0f64..1.0,
            prop::collection::vec((0i64..5, 0u16..6, 0.01f64..0.8), 0..4),
        ),
        0..200,
    )
}

proptest! {
    #[test]
    fn spreading_keeps_every_slot_within_its_room(
        specs in specs(),
        rooms in prop::collection::vec(0.0f64..2.0, 30),
        max_per_driver in 1usize..4,
    ) {
        let footprints: Vec<Vec<LoadChange>> = specs
            .iter()
            .map(|s| {
                s.5.iter()
                    .map(|&(location, hour_of_week, added)| LoadChange { location, hour_of_week, added })
                    .collect()
            })
            .collect();
        let cands: Vec<Candidate<'_>> = specs
            .iter()
            .zip(&footprints)
            .map(|(s, f)| Candidate {
                driver: s.0,
                habit: s.1,
                location: s.2,
                hour_of_week: s.3,
                score: s.4,
                footprint: f,
            })
            .collect();
        let room_of = |l: i64, h: u16| rooms[(l as usize * 6 + usize::from(h)) % rooms.len()];
        let accepted = spread(&cands, room_of, max_per_driver);

        let mut used: HashMap<(i64, u16), f64> = HashMap::new();
        let mut per_driver: HashMap<i64, usize> = HashMap::new();
        let mut habits = HashSet::new();
        let mut slots = HashSet::new();
        for &i in &accepted {
            let c = &cands[i];
            for f in c.footprint {
                *used.entry((f.location, f.hour_of_week)).or_default() += f.added;
            }
            *per_driver.entry(c.driver).or_default() += 1;
            prop_assert!(habits.insert((c.driver, c.habit)), "two advices for one habit");
            prop_assert!(slots.insert((c.driver, c.location, c.hour_of_week)), "driver twice in a slot");
        }
        for ((l, h), u) in &used {
            prop_assert!(*u <= room_of(*l, *h) + 1e-6, "slot ({l}, {h}) got {u}");
        }
        prop_assert!(per_driver.values().all(|&n| n <= max_per_driver));
        // nothing was turned away without a reason: room only shrinks and limits only fill up
        let chosen: HashSet<usize> = accepted.iter().copied().collect();
        for (i, c) in cands.iter().enumerate() {
            if chosen.contains(&i) { continue; }
            let driver_full = per_driver.get(&c.driver).copied().unwrap_or(0) >= max_per_driver;
            let habit_done = habits.contains(&(c.driver, c.habit));
            let slot_done = slots.contains(&(c.driver, c.location, c.hour_of_week));
            let mut need: HashMap<(i64, u16), f64> = HashMap::new();
            for f in c.footprint {
                *need.entry((f.location, f.hour_of_week)).or_default() += f.added;
            }
            let no_room = need.iter().any(|(&(l, h), &added)| {
                let left = room_of(l, h) - used.get(&(l, h)).copied().unwrap_or(0.0);
                added > left + 1e-9
            });
            prop_assert!(driver_full || habit_done || slot_done || no_room, "candidate {i} dropped without reason");
        }
    }
}
