//! The shared conformance corpus (real notation signatures and vectors), run through the
//! native library, the wasm component and — for `verify` cases with an OCI layout — the
//! `hsm-notary` binary. Native and wasm must agree byte for byte on every outcome.

use std::collections::BTreeMap;

use hsm_notary::engine::{NativeEngine, Verifier};
use hsm_notary_suite::{Case, cases, exceptions, run, run_cli};

struct Tally {
    pass: usize,
    fail: Vec<String>,
}

#[test]
fn conformance_corpus() {
    let cases: Vec<Case> = cases().expect("corpus readable");
    assert!(cases.len() >= 167, "corpus has {} cases", cases.len());
    let native = NativeEngine;
    let wasm = hsm_notary_suite::component_engine();
    let binary = hsm_notary_suite::binary();
    let known = exceptions().expect("exceptions readable");

    let mut per_kind: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    let mut native_tally = Tally {
        pass: 0,
        fail: Vec::new(),
    };
    let mut wasm_tally = Tally {
        pass: 0,
        fail: Vec::new(),
    };
    let mut cli_tally = Tally {
        pass: 0,
        fail: Vec::new(),
    };
    let mut disagreements = Vec::new();
    for case in &cases {
        let n =
            run(case, &native as &dyn Verifier).unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
        let w = run(case, &wasm as &dyn Verifier)
            .unwrap_or_else(|e| panic!("{} (wasm): {e:#}", case.name));
        if n.observation != w.observation {
            disagreements.push(case.name.clone());
        }
        let entry = per_kind.entry(case.kind().to_owned()).or_default();
        entry[1] += 1;
        if n.problems.is_empty() {
            entry[0] += 1;
            native_tally.pass += 1;
        } else {
            native_tally
                .fail
                .push(format!("{}: {}", case.name, n.problems.join("; ")));
        }
        if w.problems.is_empty() {
            wasm_tally.pass += 1;
        } else {
            wasm_tally
                .fail
                .push(format!("{}: {}", case.name, w.problems.join("; ")));
        }
        match run_cli(case, &binary).unwrap_or_else(|e| panic!("{} (cli): {e:#}", case.name)) {
            Some(problems) if problems.is_empty() => cli_tally.pass += 1,
            Some(problems) => {
                cli_tally
                    .fail
                    .push(format!("{}: {}", case.name, problems.join("; ")))
            }
            None => {}
        }
    }
    println!("conformance: {} cases", cases.len());
    for (kind, [pass, total]) in &per_kind {
        println!("  {kind:<28} {pass}/{total}");
    }
    println!(
        "native {}/{}, wasm {}/{}, cli {}/{} (verify cases with an OCI layout)",
        native_tally.pass,
        cases.len(),
        wasm_tally.pass,
        cases.len(),
        cli_tally.pass,
        cli_tally.pass + cli_tally.fail.len()
    );
    let unexpected = |fails: &[String]| -> Vec<String> {
        fails
            .iter()
            .filter(|f| !known.contains_key(f.split(':').next().unwrap_or_default()))
            .cloned()
            .collect()
    };
    let failures: Vec<String> = unexpected(&native_tally.fail)
        .into_iter()
        .chain(
            unexpected(&wasm_tally.fail)
                .into_iter()
                .map(|f| format!("[wasm] {f}")),
        )
        .chain(
            unexpected(&cli_tally.fail)
                .into_iter()
                .map(|f| format!("[cli] {f}")),
        )
        .collect();
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(
        disagreements.is_empty(),
        "native and wasm disagree on {disagreements:?}"
    );
    assert!(
        failures.is_empty(),
        "{} conformance failures",
        failures.len()
    );
}
