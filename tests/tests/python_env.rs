#[test]
fn virtualenv_has_pinned_python_tuf() {
    let py = ferry_tests::python::python();
    let out = std::process::Command::new(py)
        .args(["-c", "import tuf; print(tuf.__version__)"])
        .output()
        .expect("run python");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        ferry_tests::python::TUF_VERSION
    );
}
