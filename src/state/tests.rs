//! Tests of the state file: round trips, salvage, locks, validation.
use super::*;

pub(super) fn tempdir(name: &str) -> PathBuf {
    crate::testutil::tempdir("state", name)
}

#[test]
fn round_trip_and_corrupt_file_is_set_aside() {
    let dir = tempdir("rt");
    assert_eq!(load(&dir), State::default());
    let state = State { once: Some(OnceState::default()), ..State::default() };
    save(&dir, &state).unwrap();
    let back = load(&dir);
    assert_eq!(back.version, STATE_VERSION);
    assert_eq!(back.once, state.once);
    fs::write(state_path(&dir), b"{not json").unwrap();
    assert_eq!(load(&dir), State::default());
    // The salvaged (here: empty) state is saved in its place.
    assert_eq!(load_report(&dir).report, LoadReport::default());
    let aside: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("state.json.broken-"))
        .collect();
    assert_eq!(aside.len(), 1);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn lock_is_exclusive() {
    let dir = tempdir("lock");
    let _held = lock(&dir).unwrap();
    // flock locks belong to the open file description: a second open conflicts.
    assert!(lock(&dir).is_err());
    let _ = fs::remove_dir_all(&dir);
}

/// A valid state file's JSON: two outbox items, one firing alert, a ring and counters.
pub(crate) fn valid_state_json() -> serde_json::Value {
    let event = |key: &str| {
        serde_json::json!({"ts": 1_800_000_000.0, "host": "h", "rule": "cpu_high",
            "series": "cpu.usage", "metric": "cpu.usage", "labels": {}, "severity": "warning",
            "event": "firing", "value": 91.5, "value_text": "91.5%", "threshold": "> 90",
            "since": 1_800_000_000.0, "seq": 1, "key": key, "episode_key": "cpu_high:1"})
    };
    serde_json::json!({"version": 1, "saved_at": 1_800_000_010.0,
        "alerts": [{"rule": "cpu_high", "series": "cpu.usage", "state": {"phase": "firing",
            "severity": "warning", "since": 1_800_000_000.0, "last_notified": 1_800_000_000.0,
            "seq": 1, "announced": true, "told": "warning", "value": 91.5}}],
        "once": {"counters": {"version": 1, "ts": 1_800_000_000.0, "cpu": {"all": [1, 2, 3, 4, 5, 6, 7, 8]}},
            "rings": [{"series": "cpu.usage", "entries": [[1_800_000_000.0, 91.5], [1_800_000_005.0, 92.0]]}]},
        "delivery": {"outbox": [
            {"id": 1, "channel": "ops", "event": event("k1"), "created": 1_800_000_000.0},
            {"id": 2, "channel": "ops", "event": event("k2"), "created": 1_800_000_001.0}],
            "next_id": 3, "notified": {"cpu_high:1": ["ops"]}}})
}

fn records(dir: &Path) -> Vec<serde_json::Value> {
    crate::eventlog::read_records(&dir.join("events.jsonl")).unwrap()
}

#[test]
fn a_valid_state_file_loads_whole() {
    let dir = tempdir("valid");
    fs::write(state_path(&dir), valid_state_json().to_string()).unwrap();
    let loaded = load_report(&dir);
    assert_eq!(loaded.report, LoadReport::default());
    assert_eq!(loaded.state.delivery.outbox.len(), 2);
    assert_eq!(loaded.state.alerts.len(), 1);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_state_files_outbox_is_salvaged_and_each_lost_item_recorded() {
    let dir = tempdir("salvage");
    let mut v = valid_state_json();
    // One item lost its event, the alert list holds a stray string, a field has a bad type.
    v["delivery"]["outbox"][0]["event"] = serde_json::json!("garbage");
    v["alerts"].as_array_mut().unwrap().push(serde_json::json!("stray"));
    v["saved_at"] = serde_json::json!("yesterday");
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let loaded = load_report(&dir);
    let aside = loaded.report.set_aside.clone().expect("set aside");
    assert!(aside.to_string_lossy().contains("state.json.broken-"), "{aside:?}");
    assert!(aside.exists());
    assert_eq!(fs::read(&aside).unwrap(), v.to_string().into_bytes(), "the copy is whole");
    assert_eq!(loaded.state.delivery.outbox.len(), 1);
    assert_eq!(loaded.state.delivery.outbox[0].event.key, "k2");
    assert_eq!(loaded.state.delivery.next_id, 3);
    assert_eq!(loaded.state.alerts.len(), 1);
    assert_eq!((loaded.report.salvaged_items, loaded.report.lost_items), (1, 1));
    let recs = records(&dir);
    let failed: Vec<_> = recs.iter().filter(|r| r["type"] == "delivery_failed").collect();
    assert_eq!(failed.len(), 1, "{recs:?}");
    assert_eq!(failed[0]["gave_up"], true);
    assert_eq!(failed[0]["channel"], "ops");
    assert_eq!(failed[0]["raw"]["id"], 1);
    let aside_text = aside.display().to_string();
    assert!(failed[0]["reason"].as_str().unwrap().contains(&aside_text), "{}", failed[0]);
    let set: Vec<_> = recs.iter().filter(|r| r["type"] == "state_set_aside").collect();
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["file"], aside_text.as_str());
    let _ = fs::remove_dir_all(&dir);
}

/// The names of the files in `dir` with their contents.
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn peek_salvages_in_memory_and_never_writes() {
    let dir = tempdir("peek");
    let mut v = valid_state_json();
    v["delivery"]["outbox"][0]["event"] = serde_json::json!("garbage");
    v["saved_at"] = serde_json::json!("yesterday");
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let before = listing(&dir);
    let state = peek(&dir);
    assert_eq!(state.delivery.outbox.len(), 1);
    assert_eq!(state.alerts.len(), 1);
    assert_eq!(listing(&dir), before, "nothing renamed, copied, written or recorded");
    // A good file and a missing one are read as `load` reads them.
    fs::write(state_path(&dir), valid_state_json().to_string()).unwrap();
    // (Compared as JSON: derived NaN fields never compare equal.)
    let json = |s: &State| serde_json::to_string(s).unwrap();
    assert_eq!(json(&peek(&dir)), json(&load(&dir)));
    assert_eq!(peek(&tempdir("peek-missing")), State::default());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_salvaged_state_is_saved_before_the_records_and_not_salvaged_twice() {
    let dir = tempdir("salvage-save");
    let mut v = valid_state_json();
    v["delivery"]["outbox"][0]["event"] = serde_json::json!("garbage");
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let first = load_report(&dir);
    assert_eq!(first.report.salvaged_items, 1);
    // state.json now holds the salvaged state: the next start loads it cleanly.
    let second = load_report(&dir);
    assert_eq!(second.report.set_aside, None);
    assert_eq!(second.state.delivery.outbox, first.state.delivery.outbox);
    let recs = records(&dir);
    assert_eq!(recs.iter().filter(|r| r["type"] == "state_set_aside").count(), 1);
    assert_eq!(recs.iter().filter(|r| r["type"] == "delivery_failed").count(), 1);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn when_no_copy_can_be_kept_the_broken_file_stays_and_the_loss_is_recorded() {
    let dir = tempdir("salvage-full");
    let mut v = valid_state_json();
    v["delivery"]["outbox"][0]["event"] = serde_json::json!("garbage");
    let text = v.to_string();
    fs::write(state_path(&dir), &text).unwrap();
    salvage::FAIL_KEEP_ASIDE.set(true);
    let loaded = load_report(&dir);
    salvage::FAIL_KEEP_ASIDE.set(false);
    assert_eq!(fs::read_to_string(state_path(&dir)).unwrap(), text, "left in place, whole");
    assert_eq!(loaded.report.set_aside.as_deref(), Some(state_path(&dir).as_path()));
    assert_eq!(loaded.state.delivery.outbox.len(), 1, "salvaged in memory");
    let recs = records(&dir);
    let failed: Vec<_> = recs.iter().filter(|r| r["type"] == "delivery_failed").collect();
    assert_eq!(failed.len(), 1, "{recs:?}");
    let in_place = state_path(&dir).display().to_string();
    assert!(failed[0]["reason"].as_str().unwrap().contains(&in_place), "{}", failed[0]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn two_salvages_in_one_second_keep_two_copies() {
    let dir = tempdir("two-salvages");
    fs::write(state_path(&dir), b"{one").unwrap();
    let a = load_report(&dir).report.set_aside.unwrap();
    fs::write(state_path(&dir), b"{two").unwrap();
    let b = load_report(&dir).report.set_aside.unwrap();
    assert_ne!(a, b);
    assert!(a.to_string_lossy().contains(&format!("-{}", std::process::id())), "{a:?}");
    assert_eq!(fs::read(&a).unwrap(), b"{one");
    assert_eq!(fs::read(&b).unwrap(), b"{two");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn salvaged_ids_near_the_top_are_renumbered_without_overflow() {
    let dir = tempdir("ids");
    let mut v = valid_state_json();
    v["delivery"]["outbox"][0]["id"] = serde_json::json!(u64::MAX);
    v["delivery"]["outbox"][1]["id"] = serde_json::json!(u64::MAX);
    v["delivery"]["next_id"] = serde_json::json!(u64::MAX);
    v["saved_at"] = serde_json::json!("yesterday");
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let s = load(&dir);
    let ids: Vec<u64> = s.delivery.outbox.iter().map(|i| i.id).collect();
    assert_eq!(ids, [0, 1]);
    assert_eq!(s.delivery.next_id, 2);
    // Duplicates below the limit get ids above every kept one.
    let mut v = valid_state_json();
    v["delivery"]["outbox"][1]["id"] = serde_json::json!(1);
    v["delivery"]["next_id"] = serde_json::json!(1);
    v["saved_at"] = serde_json::json!("yesterday");
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let s = load(&dir);
    let ids: Vec<u64> = s.delivery.outbox.iter().map(|i| i.id).collect();
    assert_eq!((ids, s.delivery.next_id), (vec![1, 2], 3));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn verify_fails_when_the_replaced_state_dir_is_locked_by_another() {
    let dir = tempdir("verify-taken");
    let held = lock(&dir).unwrap();
    held.verify(&dir).unwrap();
    let old = dir.with_extension("old");
    let _ = fs::remove_dir_all(&old);
    fs::rename(&dir, &old).unwrap();
    fs::create_dir(&dir).unwrap();
    let other = lock(&dir).unwrap();
    let e = held.verify(&dir).unwrap_err();
    assert!(e.contains("another hostwatch"), "{e}");
    other.verify(&dir).unwrap();
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&old);
}

#[test]
fn verify_relocks_a_replaced_or_removed_state_dir() {
    let dir = tempdir("verify-relock");
    let held = lock(&dir).unwrap();
    let old = dir.with_extension("old");
    let _ = fs::remove_dir_all(&old);
    fs::rename(&dir, &old).unwrap();
    fs::create_dir(&dir).unwrap();
    held.verify(&dir).unwrap();
    // The new directory is ours now: nobody else can lock it, the old one is let go.
    assert!(lock(&dir).is_err());
    drop(lock(&old).unwrap());
    fs::remove_dir_all(&dir).unwrap();
    held.verify(&dir).unwrap();
    assert!(dir.is_dir() && lock(&dir).is_err());
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_dir_all(&old);
}

#[test]
fn a_truncated_state_file_is_recorded_as_set_aside() {
    let dir = tempdir("trunc");
    let text = valid_state_json().to_string();
    fs::write(state_path(&dir), &text[..text.len() / 2]).unwrap();
    let loaded = load_report(&dir);
    assert_eq!(loaded.state, State::default());
    let recs = records(&dir);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["type"], "state_set_aside");
    assert_eq!(recs[0]["json"], false);
    let file = recs[0]["file"].as_str().unwrap();
    assert!(file.contains("state.json.broken-") && Path::new(file).exists());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn implausible_times_are_dropped_on_load() {
    let dir = tempdir("implausible");
    let mut v = valid_state_json();
    v["alerts"][0]["state"]["since"] = serde_json::json!(-1e300);
    v["once"]["rings"][0]["entries"][0][0] = serde_json::json!(-1e300);
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let loaded = load_report(&dir);
    assert!(loaded.report.set_aside.is_none());
    assert_eq!(loaded.report.dropped_invalid, 2);
    assert!(loaded.state.alerts.is_empty());
    assert_eq!(loaded.state.once.unwrap().rings[0].entries, [(1_800_000_005.0, 92.0)]);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_large_or_negative_peak_is_a_value_not_a_time_and_nodata_times_are_checked() {
    let dir = tempdir("peak");
    let mut v = valid_state_json();
    // A free-space rule on a volume of several TB: the peak is a metric value.
    v["alerts"][0]["state"]["peak"] = serde_json::json!(4.0e12);
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let loaded = load_report(&dir);
    assert_eq!((loaded.state.alerts.len(), loaded.report.dropped_invalid), (1, 0));
    v["alerts"][0]["state"]["peak"] = serde_json::json!(-12.5);
    fs::write(state_path(&dir), v.to_string()).unwrap();
    assert_eq!(load_report(&dir).state.alerts.len(), 1);
    // The nodata marker's times are times.
    v["alerts"][0]["state"]["nodata"] = serde_json::json!({"last_seen": -1e300,
        "reason": "series_gone", "provisional": false, "elapsed_s": 0.0, "counted_at": 1.8e9});
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let loaded = load_report(&dir);
    assert_eq!((loaded.state.alerts.len(), loaded.report.dropped_invalid), (0, 1));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_flap_history_loads_and_a_flap_period_with_implausible_times_is_dropped() {
    let dir = tempdir("flap");
    let mut v = valid_state_json();
    v["alerts"][0]["state"]["flap"] = serde_json::json!({"history": "owowowowow",
        "flapping": {"since": 1.8e9, "seq": 2, "severity": "warning", "announced": true,
                     "elapsed_s": 45.0}});
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let loaded = load_report(&dir);
    assert_eq!((loaded.state.alerts.len(), loaded.report.dropped_invalid), (1, 0));
    let flap = loaded.state.alerts[0].state.flap;
    assert!(flap.is_flapping() && flap.percent() > 40.0, "{flap:?}");
    for (key, bad) in [("since", -1e300), ("elapsed_s", 1e300), ("seq", 4e9)] {
        let mut w = v.clone();
        w["alerts"][0]["state"]["flap"]["flapping"][key] = serde_json::json!(bad);
        fs::write(state_path(&dir), w.to_string()).unwrap();
        let loaded = load_report(&dir);
        assert!(loaded.state.alerts.is_empty(), "{key}");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn an_alert_whose_sequence_number_cannot_grow_is_dropped() {
    let dir = tempdir("seq");
    let mut v = valid_state_json();
    v["alerts"][0]["state"]["seq"] = serde_json::json!(u32::MAX);
    fs::write(state_path(&dir), v.to_string()).unwrap();
    let loaded = load_report(&dir);
    assert!(loaded.state.alerts.is_empty());
    assert_eq!(loaded.report.dropped_invalid, 1);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_fifo_state_file_is_set_aside_without_hanging() {
    let dir = tempdir("fifo");
    let c = std::ffi::CString::new(state_path(&dir).to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let loaded = load_report(&dir);
    assert!(loaded.report.reason.unwrap().contains("is a FIFO, not a regular file"));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn stale_temp_files_are_removed_when_the_lock_is_taken() {
    let dir = tempdir("stale");
    fs::write(dir.join("state.tmp.999999999"), b"x").unwrap();
    fs::write(dir.join("silences.tmp.999999998"), b"x").unwrap();
    let ours = dir.join(format!("state.tmp.{}", std::process::id()));
    fs::write(&ours, b"x").unwrap();
    fs::write(dir.join("notes.tmp.txt"), b"x").unwrap();
    fs::write(dir.join("history.tmp.123"), b"x").unwrap();
    let _held = lock(&dir).unwrap();
    assert!(!dir.join("state.tmp.999999999").exists());
    assert!(!dir.join("silences.tmp.999999998").exists());
    assert!(ours.exists(), "our own temp file is left alone");
    assert!(dir.join("notes.tmp.txt").exists(), "not a temp file of ours");
    assert!(dir.join("history.tmp.123").exists(), "another writer's: left alone");
    // While a `hostwatch silence` holds its lock, its temp file may be live: kept.
    let busy = tempdir("stale-busy");
    fs::write(busy.join("silences.tmp.999999998"), b"x").unwrap();
    let _silence = crate::silence_store::lock(&busy).unwrap();
    let _held_busy = lock(&busy).unwrap();
    assert!(busy.join("silences.tmp.999999998").exists());
    let _ = fs::remove_dir_all(&busy);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn deleting_the_lock_file_does_not_release_the_lock() {
    let dir = tempdir("rmlock");
    let _held = lock(&dir).unwrap();
    fs::remove_file(dir.join("lock")).unwrap();
    let e = lock(&dir).unwrap_err().to_string();
    assert!(e.contains("another hostwatch is running with this state_dir"), "{e}");
    assert!(e.contains(&dir.display().to_string()), "{e}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn save_errors_name_the_file() {
    let dir = tempdir("savefail");
    fs::create_dir_all(state_path(&dir)).unwrap();
    fs::write(state_path(&dir).join("x"), b"x").unwrap();
    let e = save(&dir, &State::default()).unwrap_err().to_string();
    assert!(e.contains("state.json"), "{e}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn an_old_outbox_item_without_rule_context_loads_and_a_new_one_keeps_it() {
    let dir = tempdir("context");
    // `valid_state_json`'s items were written before rules had summary, runbook or labels.
    fs::write(state_path(&dir), valid_state_json().to_string()).unwrap();
    let loaded = load_report(&dir);
    assert_eq!(loaded.report, LoadReport::default());
    let mut state = loaded.state;
    let event = &mut state.delivery.outbox[0].event;
    assert_eq!(event.context, crate::event::Context::default());
    event.context.summary = Some("CPU busy".into());
    event.context.runbook_url = Some("https://wiki.example.com/cpu".into());
    event.context.rule_labels.insert("team".into(), "infra".into());
    let written = event.clone();
    save(&dir, &state).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(state_path(&dir)).unwrap()).unwrap();
    let item = &json["delivery"]["outbox"][0]["event"];
    assert_eq!(
        (&item["summary"], &item["runbook_url"], &item["rule_labels"]["team"]),
        (&"CPU busy".into(), &"https://wiki.example.com/cpu".into(), &"infra".into())
    );
    assert!(json["delivery"]["outbox"][1]["event"].get("rule_labels").is_none());
    assert_eq!(load(&dir).delivery.outbox[0].event, written);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_newer_copy_is_chosen_by_generation_whatever_the_clock_did() {
    let at = |generation, saved_at| State { generation, saved_at, ..State::default() };
    // The clock stepped back between the two saves: the generation still tells.
    assert!(is_newer(&at(8, 100.0), &at(7, 200.0)));
    assert!(!is_newer(&at(7, 200.0), &at(8, 100.0)));
    assert!(!is_newer(&at(7, 100.0), &at(7, 100.0)), "the same copy is not newer");
    // A missing local file (the default state) loses to any saved copy.
    assert!(is_newer(&at(1, 100.0), &State::default()));
    // A copy from before generations: by time.
    assert!(is_newer(&at(0, 200.0), &at(5, 100.0)));
    assert!(!is_newer(&at(0, 50.0), &at(5, 100.0)));
}

#[test]
fn a_state_without_a_generation_reads_as_before_and_decode_checks_the_version() {
    let old = br#"{"version": 1, "saved_at": 5.0, "alerts": [], "delivery": {}}"#;
    assert_eq!(decode(old).unwrap().generation, 0);
    let bytes = encode(&State { generation: 3, ..State::default() }).unwrap();
    assert_eq!(decode(&bytes).unwrap().generation, 3);
    let e = decode(br#"{"version": 9, "saved_at": 5.0}"#).unwrap_err();
    assert!(e.contains("layout version 9"), "{e}");
}
