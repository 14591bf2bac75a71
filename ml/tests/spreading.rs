//! Property: spreading never sends more drivers to a slot than its spare capacity.

use std::collections::{HashMap, HashSet};

use laddkoll_ml::spread::{spread, Candidate};
use proptest::prelude::*;

fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
    prop::collection::vec(
        (0i64..30, 0usize..3, 0i64..5, 0u16..6, 0.0f64..1.0).prop_map(
            |(driver, habit, location, hour_of_week, score)| Candidate {
                driver,
                habit,
                location,
                hour_of_week,
                score,
            },
        ),
        0..200,
    )
}

proptest! {
    #[test]
    fn spreading_respects_spare_capacity(
        cands in candidates(),
        spare in prop::collection::vec(0u32..4, 30),
        max_per_driver in 1usize..4,
    ) {
        let spare_of = |l: i64, h: u16| spare[(l as usize * 6 + usize::from(h)) % spare.len()];
        let accepted = spread(&cands, spare_of, max_per_driver);

        let mut per_slot: HashMap<(i64, u16), HashSet<i64>> = HashMap::new();
        let mut per_driver: HashMap<i64, usize> = HashMap::new();
        let mut habits = HashSet::new();
        for &i in &accepted {
            let c = &cands[i];
            prop_assert!(per_slot.entry((c.location, c.hour_of_week)).or_default().insert(c.driver),
                "driver twice in a slot");
            *per_driver.entry(c.driver).or_default() += 1;
            prop_assert!(habits.insert((c.driver, c.habit)), "two advices for one habit");
        }
        for ((l, h), drivers) in &per_slot {
            prop_assert!(drivers.len() as u32 <= spare_of(*l, *h));
        }
        prop_assert!(per_driver.values().all(|&n| n <= max_per_driver));
        // nothing was turned away without a reason: every rejected candidate hit a limit
        let chosen: HashSet<usize> = accepted.iter().copied().collect();
        for (i, c) in cands.iter().enumerate() {
            if chosen.contains(&i) { continue; }
            let slot_full = per_slot.get(&(c.location, c.hour_of_week)).map_or(0, |d| d.len()) as u32
                >= spare_of(c.location, c.hour_of_week);
            let driver_full = per_driver.get(&c.driver).copied().unwrap_or(0) >= max_per_driver;
            let habit_done = habits.contains(&(c.driver, c.habit));
            let slot_done = per_slot.get(&(c.location, c.hour_of_week)).is_some_and(|d| d.contains(&c.driver));
            prop_assert!(slot_full || driver_full || habit_done || slot_done, "candidate {i} dropped without reason");
        }
    }
}
