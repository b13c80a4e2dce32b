//! Writing a large value fast: objects go to an in-memory pack, then into one pack file.

use super::layout::{Node, write_with};
use super::{Result, Store};
use crate::value::Value;
use std::io::Write;

impl Store {
    /// Writes all of a value's objects as one pack file (instead of one loose file per
    /// object) and returns its node. `progress` is told of every object written.
    pub fn write_value_packed(
        &self,
        value: &Value,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Node> {
        let scratch = git2::Repository::open_bare(&self.path)?;
        let odb = scratch.odb()?;
        let _mempack = odb.add_new_mempack_backend(1000)?;
        let node = write_with(&odb, self.format, value, 0, progress)?;
        let Node::Dir(tree) = node else {
            // A scalar is one blob: write it directly.
            return Ok(Node::Leaf(
                self.write_blob(scratch.find_blob(node.oid())?.content())?,
            ));
        };
        let mut builder = scratch.packbuilder()?;
        builder.insert_tree(tree)?;
        let mut pack = git2::Buf::new();
        builder.write_buf(&mut pack)?;
        // A pack header is "PACK", a version and the object count (bytes 8..12).
        let count = pack
            .get(8..12)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        log::debug!("import pack: {} bytes, {count} objects", pack.len());
        if count > 0 {
            let main = self.repo.odb()?;
            let mut writer = main.packwriter()?;
            writer.write_all(&pack)?;
            writer.commit()?;
            main.refresh()?;
        }
        Ok(node)
    }
}
