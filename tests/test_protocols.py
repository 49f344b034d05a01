"""The peers' protocols (busi_lib.data.protocols): sizes, balance, disjoint parts, the
keep-list honoured, the peer's own calls reproduced, determinism, errors."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from busi_lib.config import make_config
from busi_lib.data import protocols
from busi_lib.data.splits import make_folds, read_curated_list
from busi_lib.errors import ConfigError, DataError

COUNTS = {"benign": 222, "malignant": 164, "normal": 64}     # the curated keep-list's


def _keep_list():
    return [f"{c} ({i})" for c, n in COUNTS.items() for i in range(1, n + 1)]


def _data(extra=30, seed=0):
    """A data order that is not the keep-list's, with images off the list."""
    ids = _keep_list() + [f"benign ({1000 + i})" for i in range(extra)]
    order = np.random.default_rng(seed).permutation(len(ids))
    ids = [ids[i] for i in order]
    return ids, [i.split(" ")[0] for i in ids]


def test_curated_folds_sizes_balance_and_disjoint_parts():
    ids, cls = _data()
    f = protocols.curated_multitask_folds(ids, cls, _keep_list())
    kept = f[f["fold"] >= 0]
    assert len(kept) == 450 and (f["fold"] == -1).sum() == 30           # the list, honoured
    assert set(f.loc[f["fold"] == -1, "id"]) == {f"benign ({1000 + i})" for i in range(30)}
    for k in range(4):
        test = kept[kept["fold"] == k]
        assert len(test) in (112, 113)
        for c, n in COUNTS.items():                                     # stratified
            assert abs((test["class"] == c).sum() - n / 4) <= 1
        train, val, tst = protocols.fold_parts(f, k)
        assert not set(train) & set(val) and not set(train) & set(tst) and not set(val) & set(tst)
        assert len(train) + len(val) + len(tst) == 450
        assert len(val) == pytest.approx(0.2 * (450 - len(tst)), abs=1)  # 20 % of the training part
        assert (f.loc[val, "fold"] != k).all() and (f.loc[val, "fold"] >= 0).all()
    assert sorted(kept["fold"].value_counts()) == [112, 112, 113, 113]


def test_curated_folds_are_the_peers_own_calls_whatever_the_data_order():
    """The folds equal StratifiedKFold / train_test_split called as the peer calls them, on
    their table in the keep-list's order -- however our data happens to be ordered."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    keep = _keep_list()
    table = pd.DataFrame({"id": keep, "class": [i.split(" ")[0] for i in keep]})
    kf = StratifiedKFold(n_splits=4, shuffle=True, random_state=1993)
    for seed in (0, 1):
        ids, cls = _data(seed=seed)
        f = protocols.curated_multitask_folds(ids, cls, keep).set_index("id")
        for k, (tv, te) in enumerate(kf.split(table, table["class"])):
            assert (f.loc[table["id"].iloc[te], "fold"] == k).all()
            tr, va = train_test_split(table.iloc[tv], train_size=0.8, random_state=1993,
                                      shuffle=True, stratify=table.iloc[tv]["class"])
            assert f.loc[va["id"], f"val{k}"].all() and not f.loc[tr["id"], f"val{k}"].any()


def test_curated_folds_depend_on_the_keep_list_order_and_are_deterministic():
    ids, cls = _data()
    a = protocols.curated_multitask_folds(ids, cls, _keep_list())
    assert a.equals(protocols.curated_multitask_folds(ids, cls, _keep_list()))
    b = protocols.curated_multitask_folds(ids, cls, _keep_list()[::-1])
    assert not a["fold"].equals(b["fold"])


def test_curated_folds_errors():
    ids, cls = _data()
    with pytest.raises(DataError, match="not in the data"):
        protocols.curated_multitask_folds(ids[:-100], cls[:-100], _keep_list())
    with pytest.raises(DataError, match="twice"):
        protocols.curated_multitask_folds(ids, cls, _keep_list() + ["benign (1)"])
    with pytest.raises(ConfigError, match="one class name per id"):
        protocols.curated_multitask_folds(ids, cls[:-1], _keep_list())
    f = protocols.curated_multitask_folds(ids, cls, _keep_list())
    with pytest.raises(ConfigError, match="fold 7"):
        protocols.fold_parts(f, 7)


def test_make_folds_dispatches_and_a_table_without_val_columns_has_no_val_part():
    ids, cls = _data()
    names = ["benign", "malignant", "normal"]
    labels = [names.index(c) for c in cls]
    f = make_folds(ids, labels, n_folds=4, seed=1993, mode="peer_curated", class_names=names,
                   keep_list=_keep_list())
    assert f.equals(protocols.curated_multitask_folds(ids, cls, _keep_list()))
    with pytest.raises(ConfigError, match="keep_list"):
        make_folds(ids, labels, n_folds=4, mode="peer_curated", class_names=names)
    plain = f.drop(columns=[f"val{k}" for k in range(4)])
    train, val, test = protocols.fold_parts(plain, 0)
    assert len(val) == 0 and len(train) + len(test) == 450


def test_the_peer_experiment_uses_the_peers_protocol_and_our_released_recipe():
    cfg = make_config("cpu", "peer_curated")
    rel = make_config("cpu", "robust_grouped_e60")
    p = protocols.PEER_CURATED
    assert (cfg["split"], cfg["n_folds"], cfg["seed"]) == ("peer_curated", p["n_folds"], p["seed"])
    assert tuple(cfg["classes"]) == p["classes"] and cfg["image_size"] == p["image_size"]
    differ = {k for k in cfg if cfg[k] != rel[k]}
    assert differ <= {"split", "n_folds", "seed", "train_seed", "classes", "external"}, differ


def test_the_real_keep_list(real_busi):
    from busi_lib.data.splits import default_curated_path

    path = default_curated_path(real_busi)
    assert path is not None, "curation/mapping_curated_BUSI.csv next to the real BUSI"
    keep = read_curated_list(path)
    assert len(keep) == len(set(keep)) == sum(COUNTS.values())
    assert {c: sum(i.startswith(c + " ") for i in keep) for c in COUNTS} == COUNTS
    assert keep[0] == "benign (20)"             # the file's order, not sorted


# ----------------------------------------------------------------------------- scoring (analysis.peers)
def _pred():
    """Two folds with known metrics."""
    rows = []
    for k in (0, 1):
        rows += [
            dict(fold=k, true_class="benign", dice=0.8, pred_area_frac=0.1, pred_class="benign",
                 prob_malignant=0.1),
            dict(fold=k, true_class="benign", dice=0.6, pred_area_frac=0.1,
                 pred_class="malignant", prob_malignant=0.7),
            dict(fold=k, true_class="malignant", dice=0.5 + 0.1 * k, pred_area_frac=0.2,
                 pred_class="malignant", prob_malignant=0.9),
            dict(fold=k, true_class="normal", dice=0.0, pred_area_frac=0.0, pred_class="normal",
                 prob_malignant=0.05),          # nothing predicted: 1 as the peer scores it
            dict(fold=k, true_class="normal", dice=0.0, pred_area_frac=0.01,
                 pred_class="benign", prob_malignant=0.2)]       # a false lesion: 0
    return pd.DataFrame(rows)


def test_curated_scoring_on_known_values():
    from busi_lib.analysis import peers

    f = peers.curated_fold_metrics(_pred())
    assert f["Dice, benign images"].tolist() == pytest.approx([0.7, 0.7])
    assert f["Dice, malignant images"].tolist() == pytest.approx([0.5, 0.6])
    assert f["Dice, normal images"].tolist() == pytest.approx([0.5, 0.5])
    assert f["3-class accuracy"].tolist() == pytest.approx([0.6, 0.6])
    assert f["AUC, malignant vs rest"].tolist() == pytest.approx([1.0, 1.0])
    s = peers.curated_summary(f).set_index("metric")
    assert s.loc["Dice, malignant images", "ours, mean of folds"] == pytest.approx(0.55)
    assert s.loc["Dice, malignant images", "low"] < 0.55 < s.loc["Dice, malignant images", "high"]
    # two folds: the t interval (-0.085 to 1.185) overshoots a fraction's range and is cut
    assert (s.loc["Dice, malignant images", "low"], s.loc["Dice, malignant images", "high"]) \
        == (0.0, 1.0)
    assert s.loc["Dice, benign images", "aim"] == "below by 0.073 (interval below it)"
    assert s.loc["AUC, malignant vs rest", "aim"] == "no reported value"
    assert s.loc["3-class accuracy", "peer reported"] == pytest.approx(0.802)


def test_curated_scoring_errors():
    from busi_lib.analysis import peers

    with pytest.raises(ConfigError, match="no predictions"):
        peers.curated_fold_metrics(pd.DataFrame())
    with pytest.raises(ConfigError, match=r"lack columns \['pred_class'\]"):
        peers.curated_fold_metrics(_pred().drop(columns="pred_class"))


# ----------------------------------------------------------------------------- segmentation benchmark
def _lesion_data():
    ids = ([f"benign ({i})" for i in range(1, 438)] + [f"malignant ({i})" for i in range(1, 211)]
           + [f"normal ({i})" for i in range(1, 134)])
    return ids, [i.split(" ")[0] for i in ids]


def test_segbench_published_lists_sizes_and_overlap():
    lists = protocols.read_segbench_lists()
    assert [len(t) for t in lists] == [195, 195, 195]            # 30 % of BUSI's 647 lesions
    assert all(len(set(t)) == 195 for t in lists)
    assert all(i.split(" ")[0] in ("benign", "malignant") for t in lists for i in t)
    assert 0 < len(set(lists[0]) & set(lists[1])) < 195            # repeats, not folds
    mal = [sum(i.startswith("malignant") for i in t) for t in lists]
    assert all(55 <= m <= 70 for m in mal), mal                    # unstratified, near 32 %


def test_segbench_splits_train_is_the_rest_of_the_lesions():
    ids, cls = _lesion_data()
    f = protocols.segbench_splits(ids, cls)
    assert (f.loc[f["class"] == "normal", "fold"] == -1).all()
    assert (f.loc[f["class"] != "normal", "fold"] == 0).all()
    for k in range(3):
        train, val, test = protocols.fold_parts(f, k)
        assert len(test) == 195 and len(val) == 0 and len(train) == 647 - 195
        assert set(f.loc[test, "id"]) == set(protocols.read_segbench_lists()[k])
        assert not (f.loc[train, "class"] == "normal").any()
    assert f.equals(protocols.segbench_splits(ids, cls))            # deterministic


def test_segbench_errors_and_subset():
    ids, cls = _lesion_data()
    with pytest.raises(DataError, match="split 1: 1 test images"):
        protocols.segbench_splits(ids, cls, [["benign (999)"]])
    with pytest.raises(DataError, match="split 1"):                   # a normal is not a lesion
        protocols.segbench_splits(ids, cls, [["normal (1)"]])
    f = protocols.segbench_splits(ids[:50], cls[:50], subset=True)
    assert f["test0"].sum() == sum(i in set(ids[:50]) for i in protocols.read_segbench_lists()[0])
    with pytest.raises(DataError, match="columns"):
        bad = Path(__file__).parent / "_bad.csv"
        try:
            bad.write_text("a,b\n1,2\n")
            protocols.read_segbench_lists(bad)
        finally:
            bad.unlink()


def test_segbench_lists_name_real_busi_images(real_busi):
    names = {p.stem for c in ("benign", "malignant") for p in (real_busi / c).glob("*).png")}
    listed = {i for t in protocols.read_segbench_lists() for i in t}
    assert listed <= names, sorted(listed - names)[:3]


def test_segbench_summary_on_known_values():
    from busi_lib.analysis import peers

    recs = [{"metrics": {"seg_DC_mean": d, "seg_JSI_mean": d - 0.1, "seg_DC_pooled": d + 0.01,
                         "seg_JSI_pooled": d - 0.09, "cls_AUC": 0.9}} for d in (0.78, 0.80, 0.82)]
    s = peers.segbench_summary(recs).set_index("metric")
    assert s.loc["Dice, mean per image", "ours, mean of splits"] == pytest.approx(0.80)
    assert s.loc["Dice, mean per image", "aim"] == "reached"          # 0.800 >= 0.7986
    assert s.loc["IoU, mean per image", "aim"] == "below by 0.016 (interval reaches it)"
    assert s.loc["Dice, pooled pixels", "splits"] == 3
    assert s.loc["AUC, malignant vs benign", "aim"] == "no reported value"   # they segment only
    assert s.loc["AUC, malignant vs benign", "ours, mean of splits"] == pytest.approx(0.9)
    with pytest.raises(ConfigError, match="no records"):
        peers.segbench_summary([])


# ----------------------------------------------------------------------------- grouped, locked test
def test_phash_groups_union_in_index_order():
    h = ["0000000000000000", "000000000000000f", "00000000000000ff", "ffffffffffffffff"]
    # 0-1 differ in 4 bits (joined), 1-2 in 4 (joined), 0-2 in 8; 3 alone
    g = protocols.phash_groups(h)
    assert g[0] == g[1] == g[2] != g[3] and g[3] == 3
    assert g[0] == 2                      # root hung under the later index, as the peer's
    with pytest.raises(DataError, match="64-bit"):
        protocols.phash_groups(["abc"])


def _gl_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    cls = np.array(["benign"] * 150 + ["malignant"] * 100 + ["normal"] * 50)
    ids = [f"{c} ({i + 1})" for i, c in enumerate(cls)]
    hashes = [f"{int(x):016x}" for x in rng.integers(0, 2**63, n)]
    hashes[1] = hashes[0]                               # a duplicate pair, same label
    hashes[200] = hashes[2]                             # a benign/malignant pair: conflicting
    return ids, cls.tolist(), hashes


def test_grouped_locked_sizes_exclusions_and_no_straddling():
    ids, cls, hashes = _gl_data()
    f = protocols.grouped_locked_folds(ids, cls, hashes)
    assert f.loc[[2, 200], "conflict"].all() and (f.loc[[2, 200], "fold"] == -1).all()
    assert not f.loc[[2, 200], "locked"].any()
    assert not f.loc[f["class"] == "normal", "locked"].any()
    assert (f.loc[f["class"] == "normal", "fold"] == -1).all()
    kept = f[f["class"] != "normal"]
    assert abs(f["locked"].sum() - (250 - 2) / 6) <= 6           # one sixth, by groups
    assert set(kept.loc[kept["locked"], "fold"]) == {-1}
    assert sorted(set(kept.loc[~kept["locked"] & ~kept["conflict"], "fold"])) == [0, 1, 2, 3, 4]
    assert f.loc[0, "group"] == f.loc[1, "group"]
    assert f.loc[0, "fold"] == f.loc[1, "fold"] and f.loc[0, "locked"] == f.loc[1, "locked"]
    order = np.random.default_rng(1).permutation(300)           # any data order: same split
    g = protocols.grouped_locked_folds([ids[i] for i in order], [cls[i] for i in order],
                                       [hashes[i] for i in order]).set_index("id")
    assert g.loc[f["id"], "fold"].tolist() == f["fold"].tolist()


def test_grouped_locked_needs_all_three_classes():
    ids, cls, hashes = _gl_data()
    with pytest.raises(DataError, match="load the normal images too"):
        protocols.grouped_locked_folds(ids[:250], cls[:250], hashes[:250])
    with pytest.raises(ConfigError, match="one of each"):
        protocols.grouped_locked_folds(ids, cls, hashes[:-1])


#: Rows of the peer's published results/tables/busi_splits.csv (wajidali99/breast-ultrasound-
#: classification at 80f7c43): image -> (group, conflict).
PEER_ROWS = {"benign (1)": (243, False), "benign (10)": (253, False), "benign (100)": (2, False),
             "benign (105)": (63, False), "benign (127)": (300, False),
             "benign (128)": (223, False), "benign (129)": (376, False),
             "benign (131)": (594, True), "benign (136)": (383, False),
             "benign (139)": (436, False), "benign (140)": (46, False)}


def test_grouped_locked_rebuilds_the_peers_groups_on_real_busi(real_busi):
    ids = protocols.busi_image_ids(real_busi)
    assert len(ids) == 780
    t = protocols.grouped_locked_for(real_busi, ids).set_index("id")
    for i, (group, conflict) in PEER_ROWS.items():
        assert (t.loc[i, "group"], bool(t.loc[i, "conflict"])) == (group, conflict), i
    assert t["locked"].sum() == 105                     # "about 105 images locked", binary
    assert not (set(t.loc[t["locked"], "group"]) & set(t.loc[t["fold"] >= 0, "group"]))


def test_grouped_locked_summary_on_known_values():
    from busi_lib.analysis import peers

    oof = pd.DataFrame({"fold": [0, 0, 1, 1], "true_class": ["benign", "malignant"] * 2,
                        "prob_malignant": [0.1, 0.9, 0.6, 0.4]})          # AUC 3/4
    locked = pd.DataFrame({"id": ["a", "b"] * 2, "fold": [0, 0, 1, 1],
                           "true_class": ["benign", "malignant"] * 2,
                           "prob_malignant": [0.2, 0.4, 0.4, 0.6]})     # mean 0.3 < 0.5: AUC 1
    bb = pd.DataFrame({"pathology": ["benign", "malignant", "malignant"],
                       "prob_malignant": [0.5, 0.4, 0.6], "case": [1, 2, 3]})  # AUC 1/2
    s = peers.grouped_locked_summary(oof, locked, bb, n_boot=50).set_index("metric")
    assert s.loc["pooled out-of-fold AUC", "ours"] == pytest.approx(0.75)
    assert s.loc["locked-test ensemble AUC", "ours"] == pytest.approx(1.0)
    assert s.loc["BUS-BRA ensemble AUC", "ours"] == pytest.approx(0.5)
    assert s.loc["BUS-BRA ensemble AUC", "aim"].startswith("below by 0.250")
    assert s.loc["locked-test ensemble AUC", "fold models"] == 2
    assert list(peers.grouped_locked_summary(oof, None, None)["metric"]) == [
        "pooled out-of-fold AUC"]


def test_peer_refine_makes_mask_and_class_agree_as_their_code_does():
    import pandas as pd

    from busi_lib.analysis import peers

    pred = pd.DataFrame({
        "true_class": ["benign", "malignant", "normal", "normal", "benign"],
        "dice": [0.8, 0.7, 0.0, 1.0, 0.0],
        "pred_area_frac": [0.10, 0.05, 0.02, 0.0, 0.0],
        "pred_class": ["normal", "malignant", "normal", "benign", "benign"],
        "prob_malignant": [0.1, 0.9, 0.2, 0.3, 0.4]})
    got = peers.peer_refine(pred)
    # a lesion called normal loses its mask (Dice 0); a normal called normal gets an empty mask
    assert got["dice"].tolist() == [0.0, 0.7, 0.0, 1.0, 0.0]
    assert got["pred_area_frac"].tolist() == [0.0, 0.05, 0.0, 0.0, 0.0]
    # an empty mask makes the class normal; the probabilities are untouched
    assert got["pred_class"].tolist() == ["normal", "malignant", "normal", "normal", "normal"]
    assert got["prob_malignant"].equals(pred["prob_malignant"])
    assert pred["pred_class"].tolist()[3] == "benign"                 # the input is not changed
    m = peers.curated_fold_metrics(got.assign(fold=0)).iloc[0]
    assert m["Dice, normal images"] == 1.0 and m["3-class accuracy"] == 0.6
    with pytest.raises(ConfigError, match=r"lack columns \['pred_class'\]"):
        peers.peer_refine(pred.drop(columns="pred_class"))


def test_three_class_calls_on_known_values():
    import pandas as pd

    from busi_lib.analysis import peers

    pred = pd.DataFrame({"prob_benign": [0.40, 0.2, 0.1], "prob_malignant": [0.15, 0.3, 0.2],
                         "prob_normal": [0.45, 0.5, 0.7], "pred_area_frac": [0.1, 0.0, 0.2]})
    w = [0.5, 0.7, 1.8]
    assert peers.three_class_call(pred, w, "arg-max").tolist() == ["normal"] * 3
    # 0.40 / 0.5 = 0.80 > 0.45 / 1.8 = 0.25; 0.3 / 0.7 = 0.43 > 0.2 / 0.5 = 0.40 > 0.28;
    # 0.7 / 1.8 = 0.39 > 0.2 / 0.7 = 0.29 > 0.1 / 0.5 = 0.2
    assert peers.three_class_call(pred, w, "class weights undone").tolist() == [
        "benign", "malignant", "normal"]
    # normal exactly when the mask is empty, else the likelier lesion class
    assert peers.three_class_call(pred, w, "mask decides normal").tolist() == [
        "benign", "normal", "malignant"]
    with pytest.raises(ConfigError, match="call='max'"):
        peers.three_class_call(pred, w, "max")
    with pytest.raises(ConfigError, match=r"class_weights=\[1, 2\]: expected 3 positive"):
        peers.three_class_call(pred, [1, 2], "arg-max")
    with pytest.raises(ConfigError, match=r"lack columns \['prob_normal'\]"):
        peers.three_class_call(pred.drop(columns="prob_normal"), w, "arg-max")
    with pytest.raises(ConfigError, match=r"lack columns \['pred_area_frac'\]"):
        peers.three_class_call(pred.drop(columns="pred_area_frac"), w, "mask decides normal")


def test_the_class_call_is_chosen_on_validation_by_its_rule():
    import pandas as pd

    from busi_lib.analysis import peers

    w = {0: [0.5, 0.7, 1.8], 1: [0.5, 0.7, 1.8]}
    # lesions with a normal probability just above theirs (arg-max calls them normal) and
    # no mask; normals with a clear normal probability and no mask
    lesion = {"prob_benign": 0.40, "prob_malignant": 0.15, "prob_normal": 0.45,
              "pred_area_frac": 0.0}
    normal = {"prob_benign": 0.05, "prob_malignant": 0.05, "prob_normal": 0.90,
              "pred_area_frac": 0.0}
    rows = ([{"fold": k, "true_class": "benign", **lesion} for k in (0, 1) for _ in range(20)]
            + [{"fold": k, "true_class": "normal", **normal} for k in (0, 1) for _ in range(10)])
    got = peers.choose_class_call(pd.DataFrame(rows), w, n_boot=200)
    assert got["accuracy"] == {"arg-max": pytest.approx(20 / 60),
                               "class weights undone": pytest.approx(1.0),
                               "mask decides normal": pytest.approx(20 / 60)}
    c = got["candidates"]
    assert c["class weights undone"]["kept"] and c["class weights undone"]["low"] > 0
    assert not c["mask decides normal"]["kept"] and c["mask decides normal"]["level"] == 0.975
    assert got["chosen"] == "class weights undone" and got["n"] == 60 and got["folds"] == 2
    # the lesions get a mask: both candidates kept, the more accurate one chosen
    masked = pd.DataFrame(rows).assign(pred_area_frac=lambda d: np.where(
        d["true_class"] == "benign", 0.1, 0.0))
    both = peers.choose_class_call(masked, w, n_boot=200)
    assert all(v["kept"] for v in both["candidates"].values())
    assert both["accuracy"]["mask decides normal"] == 1.0
    # no difference: arg-max stays
    same = pd.DataFrame([{"fold": 0, "true_class": "normal", **normal}] * 10)
    assert peers.choose_class_call(same, w, n_boot=200)["chosen"] == "arg-max"
    with pytest.raises(ConfigError, match=r"no class weights for folds \[2\]"):
        peers.choose_class_call(same.assign(fold=2), w)
    with pytest.raises(ConfigError, match="--validation-predictions"):
        peers.choose_class_call(pd.DataFrame(), w)


def test_class_call_sentence_and_table_follow_the_choice():
    from busi_lib.book import peers_chapter

    choice = {"accuracy": {"arg-max": 0.70, "class weights undone": 0.69,
                           "mask decides normal": 0.78},
              "candidates": {
                  "class weights undone": {"difference": -0.01, "low": -0.07, "high": 0.05,
                                           "level": 0.95, "kept": False},
                  "mask decides normal": {"difference": 0.08, "low": 0.03, "high": 0.13,
                                          "level": 0.975, "kept": True}},
              "n": 272, "folds": 4, "chosen": "mask decides normal"}
    text = peers_chapter.class_call_sentence(choice)
    assert text == ("On the 272 validation images of the 4 folds, the arg-max call has a "
                    "3-class accuracy of 0.700; class weights undone changed it by -0.010 "
                    "(95.0% interval -0.070 to +0.050); mask decides normal changed it by "
                    "+0.080 (97.5% interval +0.030 to +0.130). So the test folds are called by "
                    "mask decides normal (each rule was fixed before the numbers it judges "
                    "existed).")
    t = peers_chapter.class_call_table(choice)
    assert t["chosen"].tolist() == ["", "", "yes"]
    assert t["difference from arg-max"].tolist()[2] == "+0.080 (+0.030 to +0.130, 97.5%)"
    flat = {**choice, "chosen": "arg-max"}
    assert "No interval is above zero, so the test folds are called by the arg-max" in (
        peers_chapter.class_call_sentence(flat))


def test_apply_class_call_uses_each_folds_own_weights():
    import pandas as pd

    from busi_lib.analysis import peers

    p = {"prob_benign": 0.40, "prob_malignant": 0.15, "prob_normal": 0.45, "pred_class": "x"}
    pred = pd.DataFrame([{"fold": 0, **p}, {"fold": 1, **p}])
    got = peers.apply_class_call(pred, {0: [0.5, 0.7, 1.8], 1: [1.0, 1.0, 0.5]},
                                 "class weights undone")
    assert got["pred_class"].tolist() == ["benign", "normal"] and pred["pred_class"][0] == "x"
    with pytest.raises(ConfigError, match="no class weights for fold 1"):
        peers.apply_class_call(pred, {0: [1, 1, 1]}, "arg-max")


def test_peer_oversample_repeats_each_class_round_one_over_its_share():
    from busi_lib.data.protocols import peer_oversample

    y = np.array([0] * 10 + [1] * 7 + [2] * 3)     # shares 0.5, 0.35, 0.15: x2, x3, x7
    take = peer_oversample(y)
    assert (take[:20] == np.arange(20)).all()
    assert np.bincount(y[take]).tolist() == [20, 21, 21]
    assert (peer_oversample(y) == take).all()      # deterministic
    assert (peer_oversample(np.zeros(5, int)) == np.arange(5)).all()   # one class: as is
    with pytest.raises(ConfigError, match=r"labels of shape \(0,\)"):
        peer_oversample(np.array([], int))


def test_the_trainer_oversamples_when_configured(monkeypatch):
    from busi_lib.config import config_hash, make_config
    from busi_lib.experiments import trainer

    cfg = make_config("smoke", "peer_curated_os")
    assert cfg["oversample"] == "peer" and cfg["classes"] == ["benign", "malignant", "normal"]
    base = make_config("smoke", "peer_curated")
    assert {k for k in cfg if cfg[k] != base[k]} == {"oversample"}
    # a record made before the key existed keeps its hash
    assert config_hash({k: v for k, v in base.items() if k != "oversample"}) == config_hash(base)
    seen = {}

    def stop(cfg, ck, chash, weights, steps, label, verbose):
        seen["weights"], seen["steps"] = weights, steps
        raise RuntimeError("stop here")
    monkeypatch.setattr(trainer, "_resume_or_build", stop)
    y = np.array([0] * 10 + [1] * 7 + [2] * 3)
    x = np.zeros((20, 8, 8), np.uint8)
    with pytest.raises(RuntimeError, match="stop here"):
        trainer.fit_model(cfg, x, x.astype(bool), y, key=0, ckpt_dir=Path("/nonexistent"),
                          chash="x")
    assert seen["steps"] == int(np.ceil(62 / cfg["batch_size"]))   # 20 + 10 + 14 + 18 copies
    assert np.allclose(seen["weights"], seen["weights"][0], atol=0.05)  # about balanced


def test_a_retrained_curated_candidate_is_kept_only_above_zero():
    import pandas as pd

    from busi_lib.analysis import peers

    ids = [f"benign ({i})" for i in range(40)]
    ref = pd.DataFrame({"fold": [0] * 20 + [1] * 20, "id": ids, "true_class": "benign",
                        "pred_class": ["benign"] * 20 + ["normal"] * 20})
    better = ref.assign(pred_class="benign").sample(frac=1, random_state=0)   # any row order
    got = peers.choose_curated_training(ref, better, n_boot=200)
    assert got["accuracy"] == {"reference": 0.5, "candidate": 1.0} and got["kept"]
    assert got["difference"] == 0.5 and got["n"] == 40 and got["folds"] == 2
    assert not peers.choose_curated_training(ref, ref, n_boot=200)["kept"]
    with pytest.raises(ConfigError, match="hold other images"):
        peers.choose_curated_training(ref, better.iloc[1:], n_boot=10)
    with pytest.raises(ConfigError, match="no candidate validation predictions"):
        peers.choose_curated_training(ref, pd.DataFrame())


def test_the_curated_candidate_as_recorded_also_ran_half_the_epochs():
    # peer_curated_os was defined without ROBUST_EPOCHS' entry, so in the cpu profile it runs
    # the profile's 30 epochs against peer_curated's 60; its records were made so, and the
    # chapter says so (peers.training_budget, peers.budget_sentence).
    cfg, base = make_config("cpu", "peer_curated_os"), make_config("cpu", "peer_curated")
    assert {k for k in cfg if cfg[k] != base[k]} == {"oversample", "epochs"}
    assert (cfg["epochs"], base["epochs"]) == (30, 60)


def _fold_table():
    classes = ["benign"] * 10 + ["malignant"] * 7 + ["normal"] * 3 + ["benign"] * 4
    fold = [1] * 20 + [0] * 4                 # fold 0 is tested on the last 4 images
    return pd.DataFrame({"id": [f"x{i}" for i in range(24)], "class": classes, "fold": fold,
                         "val0": [False] * 24, "val1": [False] * 24})


def test_training_budget_counts_oversampled_images_and_steps():
    from busi_lib.analysis import peers

    folds = _fold_table()
    plain = [{"fold": 0, "epochs_run": 60, "config": {"batch_size": 8, "oversample": "none"}}]
    over = [{"fold": 0, "epochs_run": 30, "config": {"batch_size": 8, "oversample": "peer"}}]
    a, b = peers.training_budget(folds, plain), peers.training_budget(folds, over)
    assert (a["images_per_epoch"], a["steps"], a["epochs"]) == (20, 60 * 3, 60)
    assert (b["images_per_epoch"], b["steps"]) == (62, 30 * 8)   # 20 + 10 + 14 + 18 copies
    said = peers.budget_sentence("ref", a, "cand", b)
    assert "1.33 times as many steps" in said and "30 epochs of about 62 images" in said
    assert peers.budget_sentence("ref", a, "cand", a) == ""
    with pytest.raises(ConfigError, match="no records"):
        peers.training_budget(folds, [])
    with pytest.raises(ConfigError, match=r"classes \['cyst'\]"):
        peers.training_budget(folds.assign(**{"class": "cyst"}), plain)


def test_differences_write_the_recorded_epochs():
    from busi_lib.analysis import peers

    d = peers.differences("peer_curated_os", 30).set_index("aspect")
    assert d.loc["training", "ours"].startswith("the released recipe's schedule: 30 epochs")
    assert "the same oversampling" in d.loc["imbalance", "ours"]
    assert "60 epochs" in peers.differences("peer_curated", 60).loc[3, "ours"]
    seg = peers.differences("peer_segbench", 60, "256 px").set_index("aspect")
    assert seg.loc["images", "ours"].endswith("image for image; 256 px")
    assert "best IoU on the 30 % part" in seg.loc["which epoch", "the peer"]
    with pytest.raises(ConfigError, match="name='peer_nope'"):
        peers.differences("peer_nope", 30)


def test_segbench_size_table_pairs_the_same_splits():
    from busi_lib.analysis import peers

    def rec(k, size, d):
        return {"fold": k, "config": {"image_size": size}, "metrics": {"seg_DC_mean": d}}
    small = [rec(0, 128, 0.70), rec(1, 128, 0.72), rec(2, 128, 0.75)]
    large = [rec(1, 256, 0.78), rec(0, 256, 0.73)]
    t = peers.segbench_size_table(small, large)
    assert t["split"].tolist() == [1, 2] and list(t.columns) == ["split", "128 px", "256 px",
                                                                 "difference"]
    assert t["difference"].round(3).tolist() == [0.03, 0.06]
    said = peers.segbench_size_sentence(t, 3)
    assert "On the 2 of 3 splits" in said and "+0.045 on average" in said
    assert "+0.030, +0.060" in said
    assert peers.segbench_size_sentence(t, 2).startswith("On all 2 splits trained at both")
    assert "not measured" in peers.segbench_size_sentence(
        peers.segbench_size_table(small, []), 3)
    with pytest.raises(ConfigError, match="key='seg_nope'"):
        peers.segbench_size_table(small, large, key="seg_nope")


def test_missed_lesions_table_splits_dice_into_misses_and_outlines():
    from busi_lib.analysis import peers

    pred = pd.DataFrame({
        "true_class": ["benign"] * 4 + ["malignant"] * 2 + ["normal"],
        "dice": [0.0, 0.8, 0.8, 0.8, 0.6, 0.7, 0.0],
        "pred_area_frac": [0.0, 0.1, 0.1, np.nan, 0.1, 0.1, 0.0],
        "pred_class": ["normal", "benign", "benign", "benign", "malignant", "benign", "normal"]})
    pred.loc[3, "pred_area_frac"] = 0.2
    t = peers.missed_lesions_table(pred).set_index("lesion class")
    assert t.loc["benign", "no mask predicted"] == 0.25
    assert t.loc["benign", "Dice, all images"] == pytest.approx(0.6)
    assert t.loc["benign", "Dice, images with a mask"] == pytest.approx(0.8)
    assert t.loc["benign", "called normal"] == 0.25 and t.loc["malignant", "images"] == 2
    said = peers.missed_lesions_sentence(t.reset_index())
    assert "On benign images, 25% get no mask" in said and "at or above the peer's 0.773" in said
    assert "On malignant images, 0% get no mask" in said and "below the peer's 0.711" in said
    assert "outlines fall short too" in said
    with pytest.raises(ConfigError, match=r"lack columns \['pred_class'\]"):
        peers.missed_lesions_table(pred.drop(columns="pred_class"))
