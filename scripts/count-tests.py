"""Adds up the test counts that each runner printed into one log and prints one closing line,
`total: N passed, N failed, N skipped`. Exits non-zero when no test ran at all."""

import re
import sys

text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
passed = failed = skipped = 0

# cargo test: "test result: ok. 12 passed; 0 failed; 1 ignored; ..."
for p, f, i in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", text):
    passed, failed, skipped = passed + int(p), failed + int(f), skipped + int(i)
# go test -v: top-level results only (subtests are indented)
passed += len(re.findall(r"^--- PASS: ", text, re.M))
failed += len(re.findall(r"^--- FAIL: ", text, re.M))
skipped += len(re.findall(r"^--- SKIP: ", text, re.M))
# pytest: "===== 40 passed, 1 failed, 2 skipped in 3.2s ====="
for line in re.findall(r"^=*\s*(\d+ (?:passed|failed|skipped|errors?)\b[^\n]*?) in [\d.]+s\b", text, re.M):
    for n, what in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", line):
        if what == "passed":
            passed += int(n)
        elif what == "skipped":
            skipped += int(n)
        else:
            failed += int(n)
# node --test (TAP summary): "# pass 12", "# fail 0", "# skipped 0"
passed += sum(int(n) for n in re.findall(r"^# pass (\d+)$", text, re.M))
failed += sum(int(n) for n in re.findall(r"^# fail (\d+)$", text, re.M))
skipped += sum(int(n) for n in re.findall(r"^# skipped (\d+)$", text, re.M))
# Maven Surefire aggregate (the per-class lines go on with ", Time elapsed"):
# "[INFO] Tests run: 24, Failures: 0, Errors: 0, Skipped: 0"
for run, fail, err, skip in re.findall(
    r"Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)\s*$", text, re.M
):
    run, fail, err, skip = int(run), int(fail), int(err), int(skip)
    passed += run - fail - err - skip
    failed += fail + err
    skipped += skip

# scripts/test-dist: "test-dist: N passed, M failed"
for p, f in re.findall(r"^test-dist: (\d+) passed, (\d+) failed$", text, re.M):
    passed, failed = passed + int(p), failed + int(f)
# integration/run.py closes with "N passed, M failed" alone on a line
for p, f in re.findall(r"^(\d+) passed, (\d+) failed$", text, re.M):
    passed, failed = passed + int(p), failed + int(f)

print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if passed == 0 else 0)
