//! Writing a large value fast: its objects go straight into one pack file (zlib, no deltas),
//! instead of one loose file per object or a delta-searching pack builder.

use super::layout::{Node, write_with};
use super::{Result, Store};
use crate::value::Value;
use flate2::Compression;
use flate2::write::ZlibEncoder;
use git2::{ObjectType, Oid};
use std::collections::HashSet;
use std::io::Write;

/// A pack file being built in memory.
struct Pack {
    buf: Vec<u8>,
    count: u32,
    seen: HashSet<Oid>,
}

impl Pack {
    fn new() -> Pack {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(b"PACK");
        buf.extend_from_slice(&2u32.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes());
        Pack {
            buf,
            count: 0,
            seen: HashSet::new(),
        }
    }

    fn add(&mut self, kind: ObjectType, data: &[u8]) -> Result<Oid> {
        let mut h = sha1_smol::Sha1::new();
        h.update(format!("{} {}\0", kind.str(), data.len()).as_bytes());
        h.update(data);
        let oid = Oid::from_bytes(&h.digest().bytes())?;
        if !self.seen.insert(oid) {
            return Ok(oid);
        }
        let code: usize = match kind {
            ObjectType::Commit => 1,
            ObjectType::Tree => 2,
            ObjectType::Blob => 3,
            _ => 4,
        };
        // Object header: type and size, 4 bits then 7 bits per byte, high bit = more.
        let mut size = data.len();
        let mut byte = ((code << 4) | (size & 0x0f)) as u8;
        size >>= 4;
        while size > 0 {
            self.buf.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        self.buf.push(byte);
        if data.len() < 1024 {
            // Most objects of a value are tiny: setting up a deflate state costs far more than
            // it saves on them, so they are stored uncompressed (valid zlib, as git reads it).
            zlib_stored(&mut self.buf, data);
        } else {
            let mut z = ZlibEncoder::new(&mut self.buf, Compression::fast());
            z.write_all(data)?;
            z.finish()?;
        }
        self.count += 1;
        Ok(oid)
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf[8..12].copy_from_slice(&self.count.to_be_bytes());
        let digest = sha1_smol::Sha1::from(&self.buf).digest().bytes();
        self.buf.extend_from_slice(&digest);
        self.buf
    }
}

/// Appends `data` as a zlib stream of stored (uncompressed) blocks.
fn zlib_stored(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&[0x78, 0x01]);
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
}

impl Store {
    /// Writes all of a value's objects as one pack file and returns its node.
    /// `progress` is told of every object written.
    pub fn write_value_packed(
        &self,
        value: &Value,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Node> {
        let t = std::time::Instant::now();
        let mut pack = Pack::new();
        let node = write_with(
            &mut |kind, data| {
                progress(1);
                pack.add(kind, data)
            },
            self.format,
            value,
            0,
        )?;
        let count = pack.count;
        let bytes = pack.finish();
        log::debug!(
            "import: {count} objects, {} bytes packed in {:?}",
            bytes.len(),
            t.elapsed()
        );
        let odb = self.repo.odb()?;
        let mut writer = odb.packwriter()?;
        writer.write_all(&bytes)?;
        writer.commit()?;
        odb.refresh()?;
        log::debug!("import: pack indexed in {:?}", t.elapsed());
        Ok(node)
    }
}
