"""The external conformance and request-smuggling corpus (issue 11).

tests/external_cases.py holds requests re-expressed from other projects'
corpora and published smuggling research (gunicorn's tests/requests/invalid,
llhttp's test/request/*.md, the HTTP Garden's findings, Go net/http's
validation tests, defparam/smuggler's mutations, Kettle's desync papers, RFC
9110/9112), each with the answer the RFC requires.  Each case is sent to one
srv (app: apps/recorder.py, --max-body 1024), over a fresh connection, with
test_smuggling's own machinery (run_case / check_case): the status(es), the
close (or a clean probe request on the same connection), the paths the app
saw (never "/smuggled"), the body the app read, and that the worker did not
crash.  Cases with ``expect_host`` also check the app's HTTP_HOST.

Delivery modes: every case whole and line by line.  Byte by byte (one send
per byte) is sampled to keep the file's run well under a minute on a 2-core
machine: every non-generated case up to 400 bytes, and one in four of the
generated smuggler permutations (those differ from each other in one byte);
see external_cases.bytewise().

Where srv answers other than the RFC today, the case is listed in
external_cases.SRV_DIFFERS with the rule, and marked xfail(strict=True): the
file passes today and reports XPASS (a failure) for each rule once srv
implements it, so the mark can be removed.  ``test_differs_summary`` prints
that list (pytest -s) and checks it names only known cases.
"""

import pytest

import external_cases as ec
import test_smuggling as ts

OUTCOMES = {}


@pytest.fixture(scope="module")
def target(module_server_factory):
    s = module_server_factory("recorder:app", "--max-body", str(ec.MAX_BODY))
    s.warm_up("/__warmup__")
    return ts.Target(s)


def _differs(case, mode):
    d = ec.SRV_DIFFERS.get(case["id"])
    if d is None:
        return None
    reason, modes = d if isinstance(d, tuple) else (d, None)
    if modes is not None and mode not in modes:
        return None
    return reason


def _params():
    out = []
    for case in ec.CASES:
        for mode in ec.modes_for(case):
            reason = _differs(case, mode)
            marks = [pytest.mark.xfail(strict=True, reason="srv differs from the RFC: " + reason)
                     ] if reason else []
            out.append(pytest.param(case, mode, id="%s-%s" % (mode, case["id"]), marks=marks))
    return out


@pytest.mark.parametrize("case,mode", _params())
def test_external_case(target, case, mode):
    res = ts.run_case(target, case, mode)
    OUTCOMES[(case["id"], mode)] = res["outcome"]
    if "expect_host" in case and res["statuses"][:1] == [200]:
        seen = [e for e in res["seen"] if e["path"] != "/__probe__"][:1]
        if not seen or seen[0].get("host") != case["expect_host"]:
            pytest.fail("case %s, mode %s: the app saw HTTP_HOST %r, want %r (%s)"
                        % (case["id"], mode, seen[0].get("host") if seen else None,
                           case["expect_host"], case["rfc"]), pytrace=False)
    try:
        ts.check_case(target, case, mode, res)
    except pytest.fail.Exception as e:
        pytest.fail("%s\nsource: %s\nrule: %s" % (e.msg, case["source"], case["rfc"]),
                    pytrace=False)


def test_table_shape():
    ids = [c["id"] for c in ec.CASES]
    assert len(ids) == len(set(ids))
    assert len(ec.CASES) >= 150, len(ec.CASES)
    for c in ec.CASES:
        assert c["source"] and c["rfc"], c["id"]
        assert "smuggled" not in " ".join(c["allowed_paths"]), c["id"]
        assert c["status"] is None or isinstance(c["status"], (int, frozenset)), c["id"]
    unknown = set(ec.SRV_DIFFERS) - set(ids)
    assert not unknown, unknown


def test_differs_summary():
    """The list issue 11 asks for: every case srv answers differently from the
    RFC, with the rule (pytest -s shows it; outcomes of this run included)."""
    lines = ["", "cases where srv differs from RFC 9110/9112 (%d of %d):"
             % (len(ec.SRV_DIFFERS), len(ec.CASES))]
    by_id = {c["id"]: c for c in ec.CASES}
    for cid, d in sorted(ec.SRV_DIFFERS.items()):
        reason, modes = d if isinstance(d, tuple) else (d, None)
        got = ", ".join("%s: %s" % (m, OUTCOMES[(cid, m)]) for m in ec.BYTEWISE_MODES
                        if (cid, m) in OUTCOMES)
        lines.append("  %-40s %s%s" % (cid, reason, "" if modes is None else
                                      " [modes: %s]" % ",".join(modes)))
        lines.append("  %-40s   source: %s; want %s%s" % ("", by_id[cid]["source"],
                                                         ts._want_str(by_id[cid]["status"]),
                                                         "; got " + got if got else ""))
    print("\n".join(lines))


def test_server_logs_clean(target):
    ts.test_server_logs_clean(target)
