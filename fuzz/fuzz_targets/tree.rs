//! The tree reader on arbitrary git objects: trees with any entry names, modes and targets
//! (blobs of any bytes, subtrees, missing objects), with or without a `.valfs` marker of any
//! text, read through the store of a JSON and of an EDN repository. Reading must return Ok or
//! Err, never panic.
#![no_main]

use git2::{ObjectType, Odb, Oid};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use valfs::codec::Format;
use valfs::store::{Node, Store};
use valfs::value::Path;

#[derive(Arbitrary, Debug)]
struct Tree {
    marker: Option<Marker>,
    /// Git sorts tree entries; other tools may not.
    sorted: bool,
    entries: Vec<Entry>,
}

#[derive(Arbitrary, Debug)]
enum Marker {
    /// `map`, `vector`, `list`, `set`, `Map` or nothing, and a newline.
    Kind(u8),
    /// Any bytes.
    Raw(Vec<u8>),
    /// A kind, then lines of a shortened name, a tab and a JSON string.
    LongKeys(u8, Vec<(String, String)>),
}

#[derive(Arbitrary, Debug)]
struct Entry {
    name: Name,
    mode: Mode,
    target: Target,
}

#[derive(Arbitrary, Debug)]
enum Name {
    Index(u16),
    Text(String),
    Bytes(Vec<u8>),
    Marker,
}

#[derive(Arbitrary, Debug)]
enum Mode {
    Blob,
    Exec,
    Tree,
    Link,
    Commit,
    Other(u32),
}

#[derive(Arbitrary, Debug)]
enum Target {
    Blob(Vec<u8>),
    /// Text and a newline: likely a scalar.
    Text(String),
    Tree(Box<Tree>),
    Missing([u8; 20]),
}

const KINDS: [&str; 6] = ["map", "vector", "list", "set", "Map", ""];

fn kind(k: u8) -> &'static str {
    KINDS[usize::from(k) % KINDS.len()]
}

/// Writes the tree's objects as raw bytes (nothing validated) and returns its id.
fn write_tree(odb: &Odb<'_>, tree: &Tree) -> Result<Oid, git2::Error> {
    let mut entries: Vec<(Vec<u8>, Vec<u8>, Oid)> = Vec::new();
    if let Some(m) = &tree.marker {
        let text = match m {
            Marker::Kind(k) => format!("{}\n", kind(*k)).into_bytes(),
            Marker::Raw(b) => b.clone(),
            Marker::LongKeys(k, lines) => {
                let mut t = format!("{}\n", kind(*k));
                for (short, key) in lines {
                    t.push_str(&format!("{short}\t{key:?}\n"));
                }
                t.into_bytes()
            }
        };
        let id = odb.write(ObjectType::Blob, &text)?;
        entries.push((b"100644".to_vec(), b".valfs".to_vec(), id));
    }
    for e in &tree.entries {
        let mut name = match &e.name {
            Name::Index(i) => i.to_string().into_bytes(),
            Name::Text(t) => t.clone().into_bytes(),
            Name::Bytes(b) => b.clone(),
            Name::Marker => b".valfs".to_vec(),
        };
        name.retain(|&b| b != 0);
        let id = match &e.target {
            Target::Blob(b) => odb.write(ObjectType::Blob, b)?,
            Target::Text(t) => odb.write(ObjectType::Blob, format!("{t}\n").as_bytes())?,
            Target::Tree(t) => write_tree(odb, t)?,
            Target::Missing(b) => Oid::from_bytes(b)?,
        };
        let mode = match e.mode {
            Mode::Blob => "100644".to_owned(),
            Mode::Exec => "100755".to_owned(),
            Mode::Tree => "40000".to_owned(),
            Mode::Link => "120000".to_owned(),
            Mode::Commit => "160000".to_owned(),
            Mode::Other(m) => format!("{m:o}"),
        };
        entries.push((mode.into_bytes(), name, id));
    }
    if tree.sorted {
        entries.sort_by(|a, b| a.1.cmp(&b.1));
    }
    let mut raw = Vec::new();
    for (mode, name, id) in entries {
        raw.extend_from_slice(&mode);
        raw.push(b' ');
        raw.extend_from_slice(&name);
        raw.push(0);
        raw.extend_from_slice(id.as_bytes());
    }
    odb.write(ObjectType::Tree, &raw)
}

/// A store of each format whose new objects go to memory, emptied after every input.
struct Fixture {
    stores: Vec<&'static Store>,
    odbs: Vec<&'static Odb<'static>>,
    mempacks: Vec<git2::Mempack<'static>>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut stores, mut odbs, mut mempacks) = (Vec::new(), Vec::new(), Vec::new());
        for format in [Format::Json, Format::Edn] {
            let path = dir.path().join(format.name());
            let store: &'static Store =
                Box::leak(Box::new(Store::init(&path, format, "main").expect("init")));
            let odb: &'static Odb<'static> = Box::leak(Box::new(store.repo().odb().expect("odb")));
            mempacks.push(odb.add_new_mempack_backend(1000).expect("mempack"));
            stores.push(store);
            odbs.push(odb);
        }
        Fixture {
            stores,
            odbs,
            mempacks,
            _dir: dir,
        }
    }
}

thread_local! {
    static FIXTURE: Fixture = Fixture::new();
}

fuzz_target!(|tree: Tree| {
    FIXTURE.with(|f| {
        for ((store, odb), mempack) in f.stores.iter().zip(&f.odbs).zip(&f.mempacks) {
            if let Ok(root) = write_tree(odb, &tree) {
                let _ = store.read_value(Node::Dir(root));
                let _ = store.dir_kind(root);
                if let Ok(dir) = store.read_dir(root) {
                    for c in &dir.entries {
                        let _ = store.read_value(c.node);
                        let _ = store.entry_key(&dir, &c.name);
                        let _ = store.node_at(root, &Path(vec![c.name.clone()]));
                    }
                }
                let _ = store.node_at(root, &Path::parse("0/a/.valfs"));
            }
            mempack.reset().expect("reset the mempack");
        }
    });
});
