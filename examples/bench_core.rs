//! How the cost of changing or reading one scalar grows with the size of the value.
//!
//! Builds nested values of 1e3 and 1e6 scalars (three levels of maps, ~10 or ~100 entries per
//! tree) and, for reference, a flat map and a flat vector of 1e3 scalars; then measures the
//! median time of a one-scalar set (`valfs set k01/k02/k03 N`) and of a one-leaf get, through
//! the library and through the release binary end to end. Run it with `scripts/bench-core`.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use valfs::codec::Format;
use valfs::store::{Edit, Store};
use valfs::value::{Path, Value};

const LIB_SETS: usize = 200;
const LIB_GETS: usize = 2000;
const CLI_RUNS: usize = 40;

struct Shape {
    name: &'static str,
    scalars: usize,
    value: fn() -> Value,
    leaf: &'static str,
}

fn key(i: usize, width: usize) -> Value {
    Value::string(format!("k{i:0width$}"))
}

fn cube(n: usize) -> Value {
    let mut id = 1_000_000;
    let mut top = BTreeMap::new();
    for i in 0..n {
        let mut mid = BTreeMap::new();
        for j in 0..n {
            let mut leaves = BTreeMap::new();
            for k in 0..n {
                id += 1;
                leaves.insert(key(k, 2), Value::Integer(id.to_string()));
            }
            mid.insert(key(j, 2), Value::Map(leaves));
        }
        top.insert(key(i, 2), Value::Map(mid));
    }
    Value::Map(top)
}

/// 10 maps of 100 scalars: 1e3 scalars in trees as wide as those of `cube(100)`.
fn wide_1e3() -> Value {
    let mut id = 1_000_000;
    let mut top = BTreeMap::new();
    for i in 0..10 {
        let mut leaves = BTreeMap::new();
        for k in 0..100 {
            id += 1;
            leaves.insert(key(k, 2), Value::Integer(id.to_string()));
        }
        top.insert(key(i, 2), Value::Map(leaves));
    }
    Value::Map(top)
}

fn flat_map() -> Value {
    Value::Map(
        (0..1000)
            .map(|i| (key(i, 3), Value::int(i as i64)))
            .collect(),
    )
}

fn flat_vector() -> Value {
    Value::Vector((0..1000).map(|i| Value::int(i as i64)).collect())
}

const SHAPES: [Shape; 5] = [
    Shape {
        name: "nested 10x10x10",
        scalars: 1_000,
        value: || cube(10),
        leaf: "k01/k02/k03",
    },
    Shape {
        name: "nested 100x100x100",
        scalars: 1_000_000,
        value: || cube(100),
        leaf: "k01/k02/k03",
    },
    Shape {
        name: "nested 10x100 (100-key maps)",
        scalars: 1_000,
        value: wide_1e3,
        leaf: "k01/k23",
    },
    Shape {
        name: "flat map",
        scalars: 1_000,
        value: flat_map,
        leaf: "k123",
    },
    Shape {
        name: "flat vector",
        scalars: 1_000,
        value: flat_vector,
        leaf: "123",
    },
];

#[derive(Clone, Copy)]
struct Row {
    import: Duration,
    lib_set: Duration,
    lib_get: Duration,
    cli_set: Duration,
    cli_get: Duration,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn cli(valfs: &FsPath, repo: &FsPath, args: &[&str]) -> Duration {
    let start = Instant::now();
    let out = Command::new(valfs)
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .expect("run valfs");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "valfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn measure(shape: &Shape, valfs: &FsPath, dir: &FsPath) -> Row {
    let repo = dir.join(format!("{}.git", shape.scalars));
    let _ = std::fs::remove_dir_all(&repo);
    let store = Store::init(&repo, Format::Json, "main").expect("init");
    let value = (shape.value)();
    let import = timed(|| {
        let node = store
            .write_value_packed(&value, &mut |_| {})
            .expect("write");
        store
            .apply(&[Edit::Put(Path::root(), node)], "import")
            .expect("import");
    });
    drop(value);
    let path = Path::parse(shape.leaf);

    let lib_set = median(
        (0..LIB_SETS)
            .map(|i| {
                let edit = Edit::Set(path.clone(), Value::int(i as i64));
                timed(|| {
                    store.apply(&[edit], "set").expect("set").expect("a commit");
                })
            })
            .collect(),
    );
    let lib_get = median(
        (0..LIB_GETS)
            .map(|_| {
                timed(|| {
                    let root = store
                        .commit_root(store.head_commit().expect("head"))
                        .expect("root");
                    let node = store.node_at(root, &path).expect("leaf");
                    std::hint::black_box(store.read_value(node).expect("read"));
                })
            })
            .collect(),
    );
    let cli_set = median(
        (0..CLI_RUNS)
            .map(|i| {
                cli(
                    valfs,
                    &repo,
                    &["set", shape.leaf, &(10_000 + i).to_string()],
                )
            })
            .collect(),
    );
    let cli_get = median(
        (0..CLI_RUNS)
            .map(|_| cli(valfs, &repo, &["get", shape.leaf]))
            .collect(),
    );
    Row {
        import,
        lib_set,
        lib_get,
        cli_set,
        cli_get,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let valfs = match args.iter().position(|a| a == "--valfs") {
        Some(i) => PathBuf::from(&args[i + 1]),
        // target/release/examples/bench_core -> target/release/valfs
        None => std::env::current_exe()
            .expect("current exe")
            .parent()
            .and_then(FsPath::parent)
            .expect("target dir")
            .join("valfs"),
    };
    assert!(
        valfs.is_file(),
        "{} not found: build it (cargo build --release) or pass --valfs PATH",
        valfs.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");

    println!(
        "| value | scalars | import | lib set (median of {LIB_SETS}) | lib get (median of {LIB_GETS}) | CLI set (median of {CLI_RUNS}) | CLI get (median of {CLI_RUNS}) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for shape in &SHAPES {
        let row = measure(shape, &valfs, dir.path());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            shape.name,
            shape.scalars,
            ms(row.import),
            ms(row.lib_set),
            ms(row.lib_get),
            ms(row.cli_set),
            ms(row.cli_get)
        );
        rows.push(row);
    }
    let (small, big) = (rows[0], rows[1]);
    println!(
        "| **nested 1e6 / 1e3** | 1000x | {} | {} | {} | {} | {} |",
        ratio(big.import, small.import),
        ratio(big.lib_set, small.lib_set),
        ratio(big.lib_get, small.lib_get),
        ratio(big.cli_set, small.cli_set),
        ratio(big.cli_get, small.cli_get)
    );
    let wide = rows[2];
    println!(
        "| **1e6 / 1e3, both in 100-key maps** | 1000x | {} | {} | {} | {} | {} |",
        ratio(big.import, wide.import),
        ratio(big.lib_set, wide.lib_set),
        ratio(big.lib_get, wide.lib_get),
        ratio(big.cli_set, wide.cli_set),
        ratio(big.cli_get, wide.cli_get)
    );
}
