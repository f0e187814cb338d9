#![no_main]
use libfuzzer_sys::fuzz_target;

// A raw volume read for `-p` is untrusted: finding and reading a file in it must not panic,
// hang or allocate without bound, whatever the boot sector, MFT and indexes say.
// The ntfs crate panics on some malformed input; read_ntfs_file contains those panics, so the
// hook that libfuzzer-sys installs (abort on any panic, even a caught one) is made silent here.
// A panic that escapes still aborts in libfuzzer-sys's own catch_unwind and is reported.
fuzz_target!(init: { std::panic::set_hook(Box::new(|_| {})); }, |data: &[u8]| {
    let mut fs = memacq::pagefile::Aligned::new(std::io::Cursor::new(data), 512);
    // The data is read too (through its data runs), at most the first 256 KiB of it.
    let mut copy = |info: &memacq::pagefile::NtfsFileInfo, read: &mut memacq::pagefile::DataReader<'_>| -> memacq::Result<()> {
        let mut buf = vec![0u8; 4096];
        let mut off = 0;
        while off < info.size.min(256 << 10) {
            if matches!(read(off, &mut buf), Ok(0)) {
                break;
            }
            off += 4096;
        }
        Ok(())
    };
    for path in [r"\pagefile.sys", r"\dir\swapfile.sys"] {
        let mut info = memacq::pagefile::NtfsFileInfo::default();
        let _ = memacq::pagefile::read_ntfs_file(&mut fs, "fuzz", path, &mut info, &mut copy);
    }
});
