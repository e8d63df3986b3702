"""The prefork board: what a child writes, its supervisor reads whole, across a real fork."""

from __future__ import annotations

import os

import orjson

from celeriac.worker.board import Board, fit_notice


def test_the_supervisor_reads_what_a_forked_child_wrote():
    board = Board()
    pid = os.fork()
    if pid == 0:  # the child: write, then leave without running the parent's exit handlers
        board.write("current", fit_notice({"id": "t1", "name": "proj.add", "args": "(2, 3)"}))
        board.write_reserved([["m1", "celery"], ["m2", "celery"]])
        board.write("totals", orjson.dumps({"proj.add": 7}))
        board.set_processed(7)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert board.current() == {"id": "t1", "name": "proj.add", "args": "(2, 3)"}
    assert board.reserved() == [["m1", "celery"], ["m2", "celery"]]
    assert board.totals() == {"proj.add": 7}
    assert board.processed() == 7


def test_an_empty_board_and_a_finished_task_read_as_nothing_running():
    board = Board()
    assert board.current() is None and board.reserved() == [] and board.processed() == 0
    board.write("current", fit_notice({"id": "t1"}))
    board.write("current", b"")
    assert board.current() is None


def test_a_notice_with_huge_arguments_is_cut_to_fit_and_still_names_its_task():
    notice = {"id": "t2", "name": "proj.big", "tag": "0|1-0|c", "t": 1.5, "args": "x" * 100_000, "kwargs": "{}"}
    board = Board()
    board.write("current", fit_notice(notice))
    seen = board.current()
    assert seen is not None and seen["id"] == "t2" and seen["tag"] == "0|1-0|c" and seen["t"] == 1.5
    assert seen["args"].endswith("...") and len(seen["args"]) < 16 * 1024


def test_a_reserved_list_too_big_for_its_region_shows_its_head():
    board = Board()
    held = [[f"message-{i}", "celery"] for i in range(5000)]
    board.write_reserved(held)
    shown = board.reserved()
    assert 100 < len(shown) < 5000 and shown == held[: len(shown)]
    board.set_held(4990)  # ten started since: the head shown moves on without a rewrite
    assert board.reserved() == held[10 : len(shown)]


def test_each_start_takes_the_first_reserved_message_off_without_rewriting_the_list():
    board = Board()
    held = [[f"m{i}", "celery"] for i in range(16)]
    board.write_reserved(held)
    for left in range(15, -1, -1):  # what a child does as it starts each one
        board.set_held(left)
        assert board.reserved() == held[16 - left :]
    board.write_reserved([["n0", "celery"]])  # the next fetch
    assert board.reserved() == [["n0", "celery"]]
