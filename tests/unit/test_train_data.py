"""Pair reading, validation, mode selection with one budget, and the length check (training/data.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pair_files import make_pairs, write_pairs

from pbt.errors import NotFoundError, ValidationError
from training import data


def _codes(rows):
    return Counter(r["code"] for r in rows)


def test_parse_reports_file_line_and_field(tmp_path):
    rows = make_pairs(4, 0)
    rows[2]["chosen"] = [{"role": "user", "content": "x"}]
    path = write_pairs(tmp_path / "p.jsonl", rows)
    with pytest.raises(ValidationError) as exc:
        data.read_pairs(str(path))
    assert f"{path}:3" in str(exc.value) and "chosen" in str(exc.value)


def test_parse_rejects_bad_json_bad_code_and_empty_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(make_pairs(1, 0)[0]) + "\n{not json\n")
    with pytest.raises(ValidationError, match=r"bad.jsonl:2.*not valid JSON"):
        data.read_pairs(str(bad))
    row = make_pairs(1, 0)[0] | {"code": "persuade"}
    with pytest.raises(ValidationError, match="code"):
        data.parse_pairs(json.dumps(row).encode(), "mem")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n \n")
    with pytest.raises(ValidationError, match="empty"):
        data.read_pairs(str(empty))
    with pytest.raises(NotFoundError, match="pairs"):
        data.read_pairs(str(tmp_path / "missing.jsonl"))


def test_read_pairs_from_store_key_with_its_prefs_manifest(tmp_path):
    from pbt.store import LocalStore

    store = LocalStore(tmp_path / "store")
    store.put_jsonl("prefs/demo/pairs.jsonl", make_pairs(4, 2))
    pf = data.read_pairs("store:prefs/demo/pairs.jsonl", store)
    assert len(pf.rows) == 6 and pf.uri.endswith("prefs/demo/pairs.jsonl") and len(pf.sha256) == 64
    assert pf.prefs_manifest is None
    store.put_json("prefs/demo/pairs.manifest.json", {"kind": "pbt.prefs/v1", "mode": "pbt"})
    assert data.read_pairs("store:prefs/demo/pairs.jsonl", store).prefs_manifest["mode"] == "pbt"
    local = write_pairs(tmp_path / "p.jsonl", make_pairs(2, 0))
    (tmp_path / "p.manifest.json").write_text(json.dumps({"kind": "pbt.prefs/v1", "seed": 3}))
    assert data.read_pairs(str(local)).prefs_manifest == {"kind": "pbt.prefs/v1", "seed": 3}


def test_modes_share_one_budget():
    rows = make_pairs(20, 0, codes=("resist", "accept", "resist", None))  # 10 resist, 5 accept, 5 none
    for mode, expect in {
        "accept": {"accept": 5},
        "resist": {"resist": 5},
        "pbt": {"accept": 3, "resist": 2},
    }.items():
        selected, budget = data.select_train(rows, mode, None, seed=1)
        assert budget == 5
        assert dict(_codes(selected)) == expect, mode
    selected, _ = data.select_train(rows, "resist", 8, seed=1)
    assert _codes(selected) == {"resist": 8}


def test_mode_without_pairs_of_a_kind_is_an_error():
    only_resist = make_pairs(8, 0, codes=("resist",))
    for mode in ("pbt", "accept", "resist"):
        with pytest.raises(ValidationError, match="no accept pairs"):
            data.select_train(only_resist, mode, None, seed=0)
    with pytest.raises(ValidationError, match="needs accept pairs but the train split has none"):
        data.select_train(only_resist, "pbt", 4, seed=0)
    with pytest.raises(ValidationError, match="lower pair_budget"):
        data.select_train(make_pairs(8, 0), "accept", 6, seed=0)


@settings(max_examples=40, deadline=None)
@given(n_resist=st.integers(0, 12), n_accept=st.integers(0, 12), seed=st.integers(0, 99))
def test_selection_is_deterministic_and_equal_sized(n_resist, n_accept, seed):
    rows = make_pairs(n_resist, 0, codes=("resist",)) + make_pairs(n_accept, 0, codes=("accept",), seed=1)
    for i, r in enumerate(rows):
        r["tree_id"] = f"t{i}"
    sizes = set()
    for mode in data.TRAIN_MODES:
        if min(n_resist, n_accept) == 0:
            with pytest.raises(ValidationError):
                data.select_train(rows, mode, None, seed)
            continue
        first, budget = data.select_train(rows, mode, None, seed)
        again, _ = data.select_train(rows, mode, None, seed)
        assert [r["tree_id"] for r in first] == [r["tree_id"] for r in again]
        assert budget == min(n_resist, n_accept)
        assert len({r["tree_id"] for r in first}) == len(first)
        sizes.add(len(first))
    assert len(sizes) <= 1


def test_dev_is_balanced_or_follows_the_mode():
    rows = make_pairs(0, 10, codes=("resist", "resist", "accept"))  # 7 resist, 3 accept
    assert _codes(data.select_dev(rows, "balanced", "resist", 0, None)) == {"resist": 3, "accept": 3}
    assert _codes(data.select_dev(rows, "balanced", "pbt", 0, 4)) == {"resist": 2, "accept": 2}
    assert _codes(data.select_dev(rows, "mode", "resist", 0, None)) == {"resist": 7}
    assert data.select_dev(rows, "none", "pbt", 0, None) == []


def _long(row, words):
    row = json.loads(json.dumps(row))
    row["chosen"][0]["content"] += " because" * words
    return row


def test_length_check_counts_truncates_drops_or_refuses(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = make_pairs(6, 0)
    rows[1] = _long(rows[1], 200)
    rows[4] = _long(rows[4], 300)
    huge_prompt = json.loads(json.dumps(rows[0]))
    huge_prompt["prompt"][1]["content"] += " and" * 400
    rows.append(huge_prompt)

    kept, rep = data.check_lengths(rows, tok, 128, "truncate", "train")
    assert (rep.checked, rep.overlong, rep.truncated, rep.dropped, rep.prompt_too_long) == (7, 3, 2, 1, 1)
    assert len(kept) == 6 and huge_prompt not in kept and rep.longest > 400

    kept, rep = data.check_lengths(rows, tok, 128, "drop", "train")
    assert len(kept) == 4 and rep.dropped == 3 and rep.truncated == 0

    with pytest.raises(ValidationError, match=r"3 of 7 train pairs are longer than max_length=128"):
        data.check_lengths(rows, tok, 128, "error", "train")

    kept, rep = data.check_lengths(rows, tok, None, "error", "train")
    assert len(kept) == 7 and rep.checked == 0
