"""Reading PostgreSQL's per-statement resource figures from its log (profile_engine
--statements): pure parsing, over an excerpt shaped as the local server writes it."""

from tests.bench.profile_engine import statement_cpu

PREFIX = "2026-11-28 12:57:57.210 UTC [26576] postgres@regplatform "
OTHER = "2026-11-28 12:57:57.211 UTC [26577] postgres@regplatform "  # another backend
LOG = "".join(
    f"{PREFIX}LOG:  {stage} STATISTICS\n"
    f"{PREFIX}DETAIL:  ! system usage stats:\n"
    f"\t!\t{user} s user, {system} s system, 0.000100 s elapsed\n"
    f"\t!\t[0.583267 s user, 0.232525 s system total]\n"
    f"{PREFIX}STATEMENT:  {statement}\n"
    for stage, user, system, statement in (
        ("PARSER", "0.000004", "0.000001", "BEGIN;"),
        ("PLANNER", "0.000050", "0.000010", "SELECT ctid, topic\n  FROM outbox"),
        ("EXECUTOR", "0.000070", "0.000000", "SELECT ctid, topic\n  FROM outbox"),
        ("PLANNER", "0.000030", "0.000000", "SELECT ctid, topic\n  FROM outbox"),
    )) + f"{PREFIX}LOG:  checkpoint starting: time\n"


def test_each_statement_gets_the_cpu_of_its_stages():
    by_statement = statement_cpu(LOG)

    assert set(by_statement) == {"BEGIN;", "SELECT ctid, topic FROM outbox"}
    outbox = by_statement["SELECT ctid, topic FROM outbox"]
    assert round(outbox["plan"], 6) == 0.00009 and round(outbox["execute"], 6) == 0.00007
    assert round(by_statement["BEGIN;"]["parse"], 6) == 0.000005


def test_entries_without_figures_are_left_out():
    assert statement_cpu(f"{PREFIX}LOG:  checkpoint starting: time\n"
                         f"{PREFIX}STATEMENT:  SELECT 1\n") == {}


def test_backends_whose_entries_interleave_are_followed_apart():
    log = (f"{PREFIX}LOG:  PLANNER STATISTICS\n"
           f"{OTHER}LOG:  EXECUTOR STATISTICS\n"
           f"{PREFIX}DETAIL:  ! system usage stats:\n\t!\t0.000020 s user, 0.000000 s system\n"
           f"{OTHER}DETAIL:  ! system usage stats:\n\t!\t0.000300 s user, 0.000000 s system\n"
           f"{OTHER}STATEMENT:  COMMIT;\n"
           f"{PREFIX}STATEMENT:  SELECT 1\n")

    by_statement = statement_cpu(log)

    assert round(by_statement["SELECT 1"]["plan"], 6) == 0.00002
    assert round(by_statement["COMMIT;"]["execute"], 6) == 0.0003
    assert by_statement["SELECT 1"]["execute"] == 0
