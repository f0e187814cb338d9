//! Faults during acquisition: pages that fail (EIO, EFAULT) become aff4:UnreadableData and
//! everything else is intact; a read that hangs is abandoned after the timeout; a stop request
//! closes the volume with what was read, marked incomplete; the volume verifies in every case.

#![allow(clippy::unwrap_used)]

use aff4::volume::write::{Mode, VolumeWriter};
use aff4::Container;
use memacq::acquire::{acquire, AcquireOptions, SystemInfo, PAGE};
use memacq::source::PhysicalSource;
use memformat::Range;
use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Memory whose byte at p is a function of p, with failing and hanging pages.
struct FaultySource {
    ranges: Vec<Range>,
    bad: HashSet<u64>,
    hang: HashSet<u64>,
    reads: AtomicU64,
}

fn byte_at(p: u64) -> u8 {
    if (p / PAGE).is_multiple_of(3) {
        0
    } else {
        (p.wrapping_mul(2654435761) >> 13) as u8
    }
}

impl PhysicalSource for FaultySource {
    fn name(&self) -> String {
        "faulty".into()
    }
    fn kind(&self) -> &'static str {
        "test"
    }
    fn ranges(&self) -> Vec<Range> {
        self.ranges.clone()
    }
    fn read_at(&self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let first = phys / PAGE;
        let last = (phys + buf.len() as u64 - 1) / PAGE;
        for pg in first..=last {
            if self.hang.contains(&pg) {
                std::thread::sleep(Duration::from_secs(3600));
            }
            if self.bad.contains(&pg) {
                return Err(io::Error::from_raw_os_error(if pg % 2 == 0 { 5 } else { 14 }));
            }
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = byte_at(phys + i as u64);
        }
        Ok(())
    }
}

fn run(
    src: Arc<FaultySource>,
    opts: AcquireOptions,
    stop: &AtomicBool,
) -> (tempfile::TempDir, std::path::PathBuf, memacq::acquire::AcquireReport) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.aff4");
    let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap();
    let report = acquire(src, &mut vol, &opts, &SystemInfo::default(), &mut |_| {}, stop).unwrap();
    vol.finish().unwrap();
    (dir, p, report)
}

fn expected(ranges: &[Range], bad: &HashSet<u64>, size: u64) -> Vec<u8> {
    let mut v = vec![0u8; size as usize];
    for r in ranges {
        for p in r.start..r.end {
            v[p as usize] = byte_at(p);
        }
    }
    let pat = b"UNREADABLEDATA";
    for &pg in bad {
        for p in pg * PAGE..(pg + 1) * PAGE {
            v[p as usize] = pat[((p % (1 << 20)) % 14) as usize];
        }
    }
    v
}

#[test]
fn failing_pages_become_unreadable_data_and_the_rest_is_intact() {
    let ranges = vec![Range { start: 0x1000, end: 0x9f000 }, Range { start: 0x100000, end: 0x500000 }];
    let bad: HashSet<u64> = [0x20, 0x21, 0x150, 0x3ff, 0x4ff].into_iter().collect();
    let src = Arc::new(FaultySource { ranges: ranges.clone(), bad: bad.clone(), hang: HashSet::new(), reads: AtomicU64::new(0) });
    let opts = AcquireOptions { extras: false, block: Some(256 << 10), ..AcquireOptions::default() };
    let (_d, p, rep) = run(src, opts, &AtomicBool::new(false));
    assert_eq!(rep.unreadable_pages, 5);
    assert_eq!(rep.unreadable.len(), 4, "{:?}", rep.unreadable);
    let c = Container::open(&[&p]).unwrap();
    let got = c.open_stream(&rep.image).unwrap().read_all(1 << 30).unwrap();
    assert!(got == expected(&ranges, &bad, 0x500000), "content differs");
    // What `pmem mount` serves as memory.raw and memory.elf: the same bytes, the pattern in unreadable pages.
    let tree = memview::mount::Tree::build(&c);
    let file = |name: &str| match &tree.find(name).unwrap_or_else(|| panic!("{name} missing")).kind {
        memview::mount::NodeKind::File(s) => s.clone(),
        memview::mount::NodeKind::Dir(_) => panic!("{name} is a directory"),
    };
    let dir = tree.nodes().iter().find(|n| n.name != "information.turtle" && n.ino != memview::mount::ROOT).unwrap().name.clone();
    let raw = file(&format!("{dir}/memory.raw")).read_all(1 << 30).unwrap();
    assert!(raw == got, "mounted memory.raw differs");
    let mut page = vec![0u8; 14];
    file(&format!("{dir}/memory.raw")).read_exact_at(0x150 * PAGE, &mut page).unwrap();
    let want: Vec<u8> = (0..14u64).map(|i| b"UNREADABLEDATA"[(((0x150 * PAGE + i) % (1 << 20)) % 14) as usize]).collect();
    assert_eq!(page, want, "the standard's UnreadableData pattern");
    let elf = file(&format!("{dir}/memory.elf"));
    let mut hdr = [0u8; 4];
    elf.read_exact_at(0, &mut hdr).unwrap();
    assert_eq!(&hdr, b"\x7fELF");
    assert!(aff4::verify::all_ok(&aff4::verify::verify(&c, &Default::default(), &|_| {}).checks));
    let t = c.graph().to_turtle();
    assert!(t.contains("aff4:unreadablePages \"5\"") && t.contains("Completed with read errors"), "{t}");
}

#[test]
fn a_hanging_read_is_abandoned() {
    let ranges = vec![Range { start: 0, end: 0x200000 }];
    let hang: HashSet<u64> = [0x80].into_iter().collect();
    let src = Arc::new(FaultySource { ranges: ranges.clone(), bad: HashSet::new(), hang: hang.clone(), reads: AtomicU64::new(0) });
    let opts = AcquireOptions {
        extras: false,
        block: Some(64 << 10),
        read_timeout: Some(Duration::from_millis(300)),
        ..AcquireOptions::default()
    };
    let t = std::time::Instant::now();
    let (_d, p, rep) = run(src, opts, &AtomicBool::new(false));
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    assert!(rep.timed_out_reads >= 1);
    assert!(rep.unreadable.iter().any(|r| r.start <= 0x80 * PAGE && r.end > 0x80 * PAGE), "{:?}", rep.unreadable);
    // Everything outside the abandoned block is intact.
    let c = Container::open(&[&p]).unwrap();
    let got = c.open_stream(&rep.image).unwrap().read_all(1 << 30).unwrap();
    let bad: HashSet<u64> = rep.unreadable.iter().flat_map(|r| r.start / PAGE..r.end / PAGE).collect();
    assert!(bad.len() <= 16, "at most the hanging page's block is lost: {bad:?}");
    assert!(got == expected(&ranges, &bad, 0x200000));
    assert!(aff4::verify::all_ok(&aff4::verify::verify(&c, &Default::default(), &|_| {}).checks));
}

#[test]
fn a_stop_request_closes_an_incomplete_volume_that_verifies() {
    struct Slow(FaultySource, Arc<AtomicBool>);
    impl PhysicalSource for Slow {
        fn name(&self) -> String {
            self.0.name()
        }
        fn kind(&self) -> &'static str {
            "test"
        }
        fn ranges(&self) -> Vec<Range> {
            self.0.ranges()
        }
        fn read_at(&self, phys: u64, buf: &mut [u8]) -> io::Result<()> {
            if phys >= 0x100000 {
                self.1.store(true, Ordering::SeqCst); // "SIGINT" half-way
            }
            self.0.read_at(phys, buf)
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ranges = vec![Range { start: 0, end: 0x400000 }];
    let src = Arc::new(Slow(
        FaultySource { ranges: ranges.clone(), bad: HashSet::new(), hang: HashSet::new(), reads: AtomicU64::new(0) },
        stop.clone(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.aff4");
    let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap();
    let opts = AcquireOptions { extras: false, block: Some(64 << 10), ..AcquireOptions::default() };
    let rep = acquire(src, &mut vol, &opts, &SystemInfo::default(), &mut |_| {}, &stop).unwrap();
    vol.finish().unwrap();
    assert!(rep.interrupted);
    let c = Container::open(&[&p]).unwrap();
    assert!(aff4::verify::all_ok(&aff4::verify::verify(&c, &Default::default(), &|_| {}).checks));
    let s = c.open_stream(&rep.image).unwrap();
    assert_eq!(s.size(), 0x400000);
    let mut head = vec![0u8; 0x1000];
    s.read_exact_at(0x1000, &mut head).unwrap();
    assert!(head.iter().enumerate().all(|(i, &b)| b == byte_at(0x1000 + i as u64)));
    let mut tail = vec![0u8; 7];
    s.read_exact_at(0x3ff000, &mut tail).unwrap();
    let want: Vec<u8> = (0..7u64).map(|i| b"UNKNOWN"[(((0x3ff000 + i) % (1 << 20)) % 7) as usize]).collect();
    assert_eq!(tail, want, "what was not read is marked unknown");
    assert!(c.graph().to_turtle().contains("Interrupted: incomplete"));
}

#[test]
fn stop_during_a_pagefile_keeps_what_was_read_and_marks_the_rest_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let swap = dir.path().join("swapfile");
    let data: Vec<u8> = (0..3u64 << 20).map(|p| byte_at(p) | 1).collect();
    std::fs::write(&swap, &data).unwrap();
    let p = dir.path().join("m.aff4");
    let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap();
    let stop = AtomicBool::new(false);
    let mut seen = Vec::new();
    let spec = memacq::pagefile::PagefileSpec::Direct(swap.to_str().unwrap().into());
    // The "SIGINT" arrives once the first 1 MiB block is in.
    let mut progress = |done| {
        seen.push(done);
        stop.store(true, Ordering::SeqCst);
    };
    let rep = memacq::pagefile::capture(&mut vol, &spec, 0, &Default::default(), &mut progress, &stop).unwrap();
    vol.finish().unwrap();
    assert_eq!(seen, [1 << 20]);
    assert!(rep.interrupted && rep.incomplete.as_deref().is_some_and(|e| e.starts_with("Interrupted")), "{:?}", rep.incomplete);
    assert_eq!((rep.size, rep.unreadable_bytes), (3 << 20, 0));
    let c = Container::open(&[&p]).unwrap();
    assert!(aff4::verify::all_ok(&aff4::verify::verify(&c, &Default::default(), &|_| {}).checks));
    let s = c.open_stream(&rep.image).unwrap();
    let mut got = vec![0u8; 3 << 20];
    s.read_exact_at(0, &mut got).unwrap();
    assert!(got[..1 << 20] == data[..1 << 20], "what was read is kept");
    let want: Vec<u8> = (1u64 << 20..3 << 20).map(|i| b"UNKNOWN"[((i % (1 << 20)) % 7) as usize]).collect();
    assert!(got[1 << 20..] == want[..], "the rest is marked unknown, not unreadable");
    assert!(c.graph().to_turtle().contains("Interrupted: incomplete: stopped at byte 1048576"));
}
