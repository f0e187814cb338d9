//! A volume in the Rekall/pmem 2.x dialect, built byte by byte (no public fixture exists):
//! `@base` Turtle with relative IRIs, no version.txt, `aff4:image` with `chunk_size`,
//! `chunks_per_segment` and the always-compressed `https://github.com/google/snappy`, u32
//! start-offset indexes at `<bevy>/index`, an `aff4:map` with swapped entry fields, and member
//! names escaped with lower-case hex.

#![allow(clippy::unwrap_used)]

use aff4::zip::ZipWriter;
use aff4::Container;

#[test]
fn rekall_pmem2_volume_reads() {
    let vol = "aff4://1f8d1e1e-0000-4000-8000-000000000001";
    // The physical memory: 3 chunks of 4096 bytes in 2 bevies (2 chunks per segment).
    let chunk = 4096usize;
    let data: Vec<u8> = (0..3 * chunk).map(|i| (i / 7) as u8 ^ (i % 13) as u8).collect();
    let mut enc = snap::raw::Encoder::new();
    let comp: Vec<Vec<u8>> = data.chunks(chunk).map(|c| enc.compress_vec(c).unwrap()).collect();
    let bevy = |idx: &[usize]| {
        let mut b = Vec::new();
        let mut index = Vec::new();
        for &i in idx {
            index.extend_from_slice(&(b.len() as u32).to_le_bytes());
            b.extend_from_slice(&comp[i]);
        }
        (b, index)
    };
    let (b0, i0) = bevy(&[0, 1]);
    let (b1, i1) = bevy(&[2]);
    // Map: virtual 0x1000..0x4000 <- stream 0..0x3000; entries are (mapped, target_offset, length, id).
    let mut map = Vec::new();
    for (mapped, toff, len) in [(0x1000u64, 0u64, 0x2000u64), (0x3000, 0x2000, 0x1000)] {
        map.extend_from_slice(&mapped.to_le_bytes());
        map.extend_from_slice(&toff.to_le_bytes());
        map.extend_from_slice(&len.to_le_bytes());
        map.extend_from_slice(&0u32.to_le_bytes());
    }
    let turtle = format!(
        r#"@base <{vol}> .
@prefix aff4: <http://aff4.org/Schema#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
</c:/PhysicalMemory> a aff4:map ;
    aff4:category <http://aff4.org/Schema#memory/physical> ;
    aff4:size 16384 ;
    aff4:stored <> .
</c:/PhysicalMemory/data> a aff4:image ;
    aff4:chunk_size 4096 ;
    aff4:chunks_per_segment 2 ;
    aff4:compression <https://github.com/google/snappy> ;
    aff4:size 12288 ;
    aff4:stored <> .
</c:/PhysicalMemory> a aff4:Image .
"#
    );
    let mut z = ZipWriter::new(Vec::new(), 0, 0, "legacy");
    z.add_member("c%3a/PhysicalMemory/data/00000000", &b0).unwrap();
    z.add_member("c%3a/PhysicalMemory/data/00000000/index", &i0).unwrap();
    z.add_member("c%3a/PhysicalMemory/data/00000001", &b1).unwrap();
    z.add_member("c%3a/PhysicalMemory/data/00000001/index", &i1).unwrap();
    z.add_member("c%3a/PhysicalMemory/map", &map).unwrap();
    z.add_member("c%3a/PhysicalMemory/idx", format!("{vol}/c:/PhysicalMemory/data").as_bytes()).unwrap();
    z.add_member("information.turtle", turtle.as_bytes()).unwrap();
    z.add_member("container.description", vol.as_bytes()).unwrap();
    let bytes = z.finish(vol.as_bytes()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pmem2.aff4");
    std::fs::write(&p, &bytes).unwrap();
    let c = Container::open(&[&p]).unwrap();
    assert_eq!(c.volumes()[0].dialect, aff4::volume::Dialect::PreStandardRekall);
    let urn = c.default_stream().unwrap();
    assert_eq!(urn, format!("{vol}/c:/PhysicalMemory"));
    let got = c.open_stream(&urn).unwrap().read_all(1 << 20).unwrap();
    assert_eq!(got.len(), 16384);
    assert!(got[..0x1000].iter().all(|&b| b == 0));
    assert_eq!(&got[0x1000..0x4000], &data[..]);
    assert!(got[0x4000..].iter().all(|&b| b == 0));
    let imgs = c.images();
    assert!(imgs.iter().any(|i| i.memory), "{imgs:?}");
}
