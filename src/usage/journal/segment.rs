//! A journal segment: one file per shard and sequence number, preallocated to its full
//! size (so that a store into it can never fault on a full disk) and memory-mapped
//! shared, so the shard appends records with plain stores and the kernel keeps them if
//! the process dies. The first [`HEADER_BYTES`] say whose segment it is.
//!
//! The mapping is shared by two threads: the shard writes only past what it published,
//! the writer reads only up to it (the publication is an atomic in `JournalShared`).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Bytes at the start of a segment: magic, version, shard, sequence.
pub const HEADER_BYTES: usize = 64;
/// The magic of a segment header.
pub const MAGIC: &[u8; 8] = b"LLMOPSJ1";
/// Largest segment supported (offsets are 32-bit in the published position).
pub const MAX_SEGMENT_BYTES: usize = 1 << 31;

/// Why a segment could not be made or opened.
#[derive(Debug)]
pub enum SegmentError {
    Io(std::io::Error),
    /// Not a segment of this format (bad magic or header).
    NotASegment(PathBuf),
}

impl std::fmt::Display for SegmentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SegmentError::Io(e) => write!(f, "{e}"),
            SegmentError::NotASegment(p) => write!(f, "{} is not a journal segment", p.display()),
        }
    }
}

impl From<std::io::Error> for SegmentError {
    fn from(e: std::io::Error) -> Self {
        SegmentError::Io(e)
    }
}

/// A mapped segment file.
#[derive(Debug)]
pub struct Segment {
    ptr: *mut u8,
    len: usize,
    file: File,
    pub path: PathBuf,
    pub shard: u32,
    pub seq: u32,
}

// SAFETY: the mapping is plain memory owned by this value; the shard and the writer
// coordinate who touches which bytes through the published position (see the module doc).
unsafe impl Send for Segment {}
// SAFETY: as above: concurrent readers only read bytes the writer published.
unsafe impl Sync for Segment {}

/// The file name of a segment.
pub fn file_name(shard: u32, seq: u32) -> String {
    format!("s{shard:03}-{seq:010}.seg")
}

/// `(shard, seq)` of a segment file name.
pub fn parse_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix('s')?.strip_suffix(".seg")?;
    let (shard, seq) = rest.split_once('-')?;
    Some((shard.parse().ok()?, seq.parse().ok()?))
}

/// Maps the file; a new segment (`writable`) is populated by the thread that makes it (the
/// writer), so the shard's first store into each page does not also read it in.
fn map(file: &File, len: usize, writable: bool) -> std::io::Result<*mut u8> {
    let (prot, flags) = if writable {
        (
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
        )
    } else {
        (libc::PROT_READ, libc::MAP_SHARED)
    };
    // SAFETY: mapping `len` bytes of an open file we own; the result is checked.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, file.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(p.cast())
}

/// Reserves `len` bytes of disk for the file: `fallocate`, or zeros written where the
/// file system does not support it (so a store into the mapping never meets a full disk).
fn allocate(file: &File, len: usize) -> std::io::Result<()> {
    // SAFETY: fallocate on our own fd; the result is checked.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
    if rc == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
        return Err(e);
    }
    use std::io::Write;
    let zeros = vec![0u8; 1 << 20];
    let mut w = file;
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len());
        w.write_all(&zeros[..n])?;
        left -= n;
    }
    Ok(())
}

/// fsyncs a directory (after creating, renaming or removing in it).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Segment {
    /// Creates `dir/s{shard}-{seq}.seg` of `len` bytes, allocated on disk (a full disk
    /// fails here, not later), with its header written and synced, and maps it.
    pub fn create(dir: &Path, shard: u32, seq: u32, len: usize) -> Result<Segment, SegmentError> {
        let len = len.clamp(HEADER_BYTES * 2, MAX_SEGMENT_BYTES);
        let path = dir.join(file_name(shard, seq));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        if let Err(e) = allocate(&file, len) {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
        let ptr = match map(&file, len, true) {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
        };
        let seg = Segment {
            ptr,
            len,
            file,
            path,
            shard,
            seq,
        };
        let mut h = [0u8; HEADER_BYTES];
        h[..8].copy_from_slice(MAGIC);
        h[8..12].copy_from_slice(&1u32.to_le_bytes());
        h[12..16].copy_from_slice(&shard.to_le_bytes());
        h[16..20].copy_from_slice(&seq.to_le_bytes());
        // SAFETY: the header lies inside the mapping, and nobody else has the segment yet.
        unsafe { std::ptr::copy_nonoverlapping(h.as_ptr(), seg.ptr, HEADER_BYTES) };
        seg.sync(0, HEADER_BYTES)?;
        seg.file.sync_all()?;
        sync_dir(dir)?;
        Ok(seg)
    }

    /// Opens an existing segment read-only (recovery).
    pub fn open(path: &Path) -> Result<Segment, SegmentError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len() as usize;
        if !(HEADER_BYTES..=MAX_SEGMENT_BYTES).contains(&len) {
            return Err(SegmentError::NotASegment(path.to_path_buf()));
        }
        let ptr = map(&file, len, false)?;
        let mut seg = Segment {
            ptr,
            len,
            file,
            path: path.to_path_buf(),
            shard: 0,
            seq: 0,
        };
        let mut h = [0u8; HEADER_BYTES];
        h.copy_from_slice(seg.bytes(0, HEADER_BYTES));
        if &h[..8] != MAGIC || h[8..12] != 1u32.to_le_bytes() {
            return Err(SegmentError::NotASegment(path.to_path_buf()));
        }
        seg.shard = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        seg.seq = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
        Ok(seg)
    }

    pub fn size(&self) -> usize {
        self.len
    }

    /// `n` bytes at `at`, which the caller knows are written (published, or read back
    /// from a closed segment).
    pub fn bytes(&self, at: usize, n: usize) -> &[u8] {
        let end = at.saturating_add(n).min(self.len);
        let at = at.min(end);
        // SAFETY: the range lies inside the mapping; the bytes are no longer written
        // (the caller reads only what was published).
        unsafe { std::slice::from_raw_parts(self.ptr.add(at), end - at) }
    }

    /// Copies `data` to `at` (the shard's append). The caller owns that range: nothing
    /// past the published position is read by anyone else.
    pub fn write(&self, at: usize, data: &[u8]) {
        if at.saturating_add(data.len()) > self.len {
            return;
        }
        // SAFETY: the range lies inside a writable mapping and is not read concurrently.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(at), data.len()) };
    }

    /// Writes the dirty pages of `[from, to)` to disk (the group commit).
    pub fn sync(&self, from: usize, to: usize) -> std::io::Result<()> {
        let page = 4096;
        let start = from / page * page;
        let end = to.min(self.len);
        if end <= start {
            return Ok(());
        }
        // SAFETY: msync of a range inside our own mapping (page-aligned start).
        let rc = unsafe { libc::msync(self.ptr.add(start).cast(), end - start, libc::MS_SYNC) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Unmaps and deletes the file (the segment's rows are all in closed files).
    pub fn retire(self) -> std::io::Result<()> {
        let path = self.path.clone();
        drop(self);
        std::fs::remove_file(path)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once, when its last owner goes.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_write_reopen() {
        let dir = std::env::temp_dir().join(format!("llmops-seg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = Segment::create(&dir, 3, 7, 8192).unwrap();
        assert_eq!(s.size(), 8192);
        s.write(HEADER_BYTES, b"hello");
        s.sync(0, HEADER_BYTES + 5).unwrap();
        let path = s.path.clone();
        drop(s);
        let r = Segment::open(&path).unwrap();
        assert_eq!((r.shard, r.seq), (3, 7));
        assert_eq!(r.bytes(HEADER_BYTES, 5), b"hello");
        assert_eq!(r.bytes(HEADER_BYTES + 5, 3), &[0, 0, 0]);
        assert_eq!(parse_name(&file_name(3, 7)), Some((3, 7)));
        assert!(Segment::create(&dir, 3, 7, 8192).is_err(), "never overwrites");
        r.retire().unwrap();
        assert!(!path.exists());
        std::fs::write(
            dir.join("junk.seg"),
            b"not a segment at all, not at all, no no no no no no no no no no!",
        )
        .unwrap();
        assert!(Segment::open(&dir.join("junk.seg")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
