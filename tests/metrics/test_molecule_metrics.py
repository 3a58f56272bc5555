"""Molecule metrics (MOSES + GuacaMol KL) against their definitions, RDKit computed
directly, scipy, fcd-torch, and the statistics molsets ships."""
import math
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")
from rdkit import Chem, DataStructs  # noqa: E402
from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator  # noqa: E402
from rdkit.Contrib.SA_Score import sascorer  # noqa: E402

import genlab.metrics.molecules as M  # noqa: E402
from genlab.data.molecules import moses_file  # noqa: E402
from genlab.errors import DataError  # noqa: E402
from genlab.metrics import _mol_features as MF, _mol_reference as MR, _mol_similarity as MS  # noqa: E402

ASPIRIN, CAFFEINE = "CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"
AZO_DYE = "CCN(CC)c1ccc(N=Nc2ccccc2)cc1"  # PAINS azo_A


def _molsets():
    try:
        return moses_file("test")
    except DataError:
        pytest.skip("molsets (MOSES data) is not installed")


@pytest.fixture(scope="module")
def moses_sample():
    """300 MOSES test molecules and 200 others (seeded), for set-level checks."""
    _molsets()
    smiles = MR.moses_smiles("test")
    rng = np.random.default_rng(0)
    idx = rng.choice(len(smiles), 500, replace=False)
    return [smiles[i] for i in idx[:300]], [smiles[i] for i in idx[300:]], idx


def _morgan(smiles, bits=1024):
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=bits)
    return [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]


# ----------------------------------------------------------------------------- input checks
def test_bad_input_is_named():
    with pytest.raises(ValueError, match="empty"):
        M.validity([])
    with pytest.raises(TypeError, match=r"gen\[1\] is int"):
        M.validity(["CCO", 3])
    with pytest.raises(TypeError, match="single str"):
        M.validity("CCO")
    with pytest.raises(ValueError, match=r"0 of the 2 generated SMILES are valid.*validity 0.000"):
        M.internal_diversity(["xx", ""])
    with pytest.raises(ValueError, match="FCD needs at least 2"):
        M.fcd(["CCO", "yy"], [ASPIRIN, CAFFEINE])
    with pytest.raises(ValueError, match="moses_metrics: 0 of the 3 generated"):
        M.moses_metrics(["xx", "C1CC", ""], train=False, test=[ASPIRIN, CAFFEINE])


def test_validity_unique_novelty_by_definition():
    gen = ["CCO", "OCC", "C(C)O", "c1ccccc1", "C1=CC=CC=C1", "xx", "", "C1CC"]
    assert M.validity(gen) == 5 / 8  # "" and an unclosed ring are invalid
    assert M.unique_at(gen) == 2 / 5  # ethanol x3, benzene x2 (Kekulé = aromatic)
    assert M.unique_at(gen, 2) == 0.5
    with pytest.warns(UserWarning, match="only 5 valid"):
        assert M.unique_at(gen, 1000) == 2 / 5
    # novelty compares canonical forms: a differently written training SMILES is not novel
    assert M.novelty(["CCO", "c1ccccc1", "CCN", "CCN"], ["OCC", "N(C)C"]) == 2 / 3
    assert M.novelty([CAFFEINE], ["Cn1c(=O)c2c(ncn2C)n(C)c1=O"]) == 0.0
    known = M.KnownMolecules.from_smiles(["OCC", "bad"])
    assert len(known) == 1 and known.contains(["CCO", "CCC"]).tolist() == [True, False]


# ----------------------------------------------------------------------------- Tanimoto
def test_internal_diversity_known_values():
    assert M.internal_diversity([ASPIRIN] * 5) == 0.0
    assert M.internal_diversity([ASPIRIN] * 5, 2) == 0.0
    a, c = _morgan([ASPIRIN, CAFFEINE])
    t = DataStructs.TanimotoSimilarity(a, c)
    assert 0 < t < 1
    # all pairs, self pairs included: mean_j mean_i T = (1 + t) / 2
    assert M.internal_diversity([ASPIRIN, CAFFEINE]) == pytest.approx((1 - t) / 2, abs=1e-7)
    assert M.internal_diversity([ASPIRIN, CAFFEINE], 2) == pytest.approx(
        1 - math.sqrt((1 + t * t) / 2), abs=1e-7)


def test_snn_matches_brute_force(moses_sample, monkeypatch):
    gen, ref, _ = moses_sample
    gen = gen[:60]
    fg, fr = _morgan(gen), _morgan(ref)
    expected = np.mean([max(DataStructs.BulkTanimotoSimilarity(f, fr)) for f in fg])
    assert M.snn(gen, ref) == pytest.approx(expected, abs=1e-12)
    # blocks smaller than the sets: popcount runs cut across blocks
    monkeypatch.setattr(MS, "REF_BLOCK", 16)
    monkeypatch.setattr(MS, "GEN_BLOCK", 7)
    assert M.snn(gen, ref) == pytest.approx(expected, abs=1e-12)


def test_bfloat16_intersections_are_exact():
    rng = np.random.default_rng(0)
    bits = np.zeros((64, 1024), np.uint8)
    for row, k in zip(bits, np.linspace(0, 256, 64).astype(int)):  # popcounts 0 .. 256
        row[rng.permutation(1024)[:k]] = 1
    packed = np.packbits(bits, axis=1)
    assert MS.popcounts(packed).max() == 256 and MS._gemm_dtype(MS.popcounts(packed)) is MS.torch.bfloat16
    x = MS._bits(packed, MS.torch.bfloat16, "cpu")
    exact = bits.astype(np.int64) @ bits.T.astype(np.int64)
    assert np.array_equal((x @ x.T).float().numpy().astype(np.int64), exact)
    dense = np.packbits(np.ones((2, 1024), np.uint8), axis=1)
    assert MS._gemm_dtype(MS.popcounts(dense)) is MS.torch.float32
    assert MS.nearest_similarity(dense, dense)[0] == 1.0


# ----------------------------------------------------------------------------- counts
def test_fragment_and_scaffold_cosine():
    gen = [ASPIRIN, ASPIRIN, "c1ccc2ccccc2c1", "CCO"]
    ref = [CAFFEINE, "c1ccc2ccccc2c1", "c1ccc2ccccc2c1", "Cc1ccc2ccccc2c1", ASPIRIN]

    def frag_counts(smiles):
        out = {}
        for s in smiles:
            for f in Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(Chem.MolFromSmiles(s))).split("."):
                out[f] = out.get(f, 0) + 1
        return out

    def cosine(a, b):
        keys = sorted(set(a) | set(b))
        u, v = np.array([a.get(k, 0) for k in keys]), np.array([b.get(k, 0) for k in keys])
        return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    assert M.fragment_similarity(gen, ref) == pytest.approx(cosine(frag_counts(ref), frag_counts(gen)))
    # scaffolds with >= 2 rings: gen {naphthalene: 1}, ref {caffeine core: 1, naphthalene: 3}
    assert M.scaffold_similarity(gen, ref) == pytest.approx(3 / math.sqrt(10))
    assert math.isnan(M.scaffold_similarity(["CCO", "c1ccccc1"], ref))  # no 2-ring scaffold
    assert M.fragment_similarity(ref, ref) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- filters
def test_filters_known_hits():
    _molsets()
    assert M.filters([ASPIRIN, CAFFEINE, "CCO"]) == 1.0
    assert M.filters([AZO_DYE]) == 0.0  # PAINS azo_A
    assert M.filters(["O=[N+]([O-])c1ccccc1"]) == 0.0  # charged atoms
    assert M.filters(["C1CCCCCCC1"]) == 0.0  # an 8-membered ring
    assert M.filters(["Ic1ccccc1"]) == 0.0  # iodine is not allowed
    assert M.filters([ASPIRIN, AZO_DYE, "xx"]) == 0.5  # over the valid molecules
    smarts = MF.filter_smarts()
    assert len(smarts) == 22 + 480  # molsets' MCF and PAINS lists
    h = Chem.AddHs(Chem.MolFromSmiles(AZO_DYE))
    assert any(h.HasSubstructMatch(Chem.MolFromSmarts(s)) for s in smarts[22:])


def test_filter_screen_changes_no_verdict():
    """Pattern-fingerprint screening gives the verdicts of trying every pattern."""
    _molsets()
    from rdkit import RDConfig

    path = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    if not path.is_file():
        pytest.skip("RDKit's NCI sample is not installed")
    lines = path.read_text().splitlines()[:400:2]
    mols = [m for m in (Chem.MolFromSmiles(line.split()[0]) for line in lines) if m]
    mols = [m for m in mols if m.GetNumAtoms() <= 40]  # keeps the test to a few seconds
    patterns, _ = MF._filter_patterns()
    pattern_fps = [Chem.PatternFingerprint(p, fpSize=2048) for p in patterns]
    hits = 0
    for m in mols:
        h = Chem.AddHs(m)
        matches = [h.HasSubstructMatch(p) for p in patterns]
        unscreened = any(matches)
        mfp = Chem.PatternFingerprint(h, fpSize=2048)
        # the screen never drops a pattern that matches
        assert all(DataStructs.AllProbeBitsMatch(q, mfp) for q, hit in zip(pattern_fps, matches) if hit)
        hits += unscreened
        rings_ok = all(len(r) < 8 for r in m.GetRingInfo().AtomRings())
        atoms_ok = all(a.GetFormalCharge() == 0 and a.GetSymbol() in MF.ALLOWED_ATOMS for a in m.GetAtoms())
        assert MF.passes_filters(m) == (rings_ok and atoms_ok and not unscreened)
    assert hits > 10  # the sample does exercise the patterns


# ----------------------------------------------------------------------------- properties
def test_properties_of_aspirin_and_caffeine():
    mols = [Chem.MolFromSmiles(s) for s in (ASPIRIN, CAFFEINE)]
    for fn, ref in ((M.logp, Crippen.MolLogP), (M.sa, sascorer.calculateScore), (M.qed, QED.qed),
                    (M.weight, Descriptors.MolWt)):
        got = fn([ASPIRIN, CAFFEINE, "nope"])
        np.testing.assert_allclose(got[:2], [ref(m) for m in mols], rtol=0, atol=1e-12)
        assert math.isnan(got[2])
        assert fn(ASPIRIN) == pytest.approx(ref(mols[0]), abs=1e-12)
    assert M.weight(ASPIRIN) == pytest.approx(180.159, abs=1e-3)


def test_property_distances_are_scipy_wasserstein(moses_sample):
    from scipy.stats import wasserstein_distance

    gen, ref, _ = moses_sample
    gen = gen[:80]
    got = M.property_distances(gen, ref)
    for name, fn in (("logP", M.logp), ("SA", M.sa), ("QED", M.qed), ("weight", M.weight)):
        assert got[name] == pytest.approx(wasserstein_distance(fn(ref), fn(gen)), abs=1e-12)
    assert M.property_distances(ref, ref) == {"logP": 0.0, "SA": 0.0, "QED": 0.0, "weight": 0.0}


# ----------------------------------------------------------------------------- FCD
def test_chemnet_tokens_match_fcd_torch():
    get_one_hot = pytest.importorskip("fcd_torch.utils").get_one_hot
    for s in (ASPIRIN, CAFFEINE, "C[Si](C)(C)Cl", "Brc1ccccc1I", "[Na+].[Cl-]", "C" * 400, "[nH]1cccc1"):
        tok = np.frombuffer(MF.chemnet_tokens(s), np.uint8)
        mine = np.zeros((MF.CHEMNET_LEN, len(MF.CHEMNET_VOCAB)))
        keep = tok != MF.NO_TOKEN
        mine[np.flatnonzero(keep), tok[keep]] = 1
        assert np.array_equal(mine, get_one_hot(s, MF.CHEMNET_LEN)), s


def test_fcd_uses_fcd_torch_chemnet(moses_sample):
    """ChemNet activations equal fcd-torch's, the statistics are mean / unbiased covariance,
    and the distance is genlab's Fréchet distance (itself tested against scipy's sqrtm;
    the benchmark compares whole FCD values with MOSES)."""
    fcd_torch = pytest.importorskip("fcd_torch")
    gen, ref, _ = moses_sample
    gen, ref = gen[:30], ref[:40]
    canon = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in ref]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = fcd_torch.FCD(device="cpu", n_jobs=1).get_predictions(canon)
    acts = MS.chemnet_activations(MF.featurize(ref, ("chemnet",))["chemnet"])
    np.testing.assert_allclose(acts, expected, rtol=0, atol=1e-5)
    stats = M.ReferenceStats.from_smiles(ref, kl_size=0)
    np.testing.assert_allclose(stats.fcd_mu, acts.astype(np.float64).mean(0), atol=1e-12)
    np.testing.assert_allclose(stats.fcd_sigma, np.cov(acts.astype(np.float64).T), atol=1e-12)
    got = M.fcd(gen, stats)
    g = M.ReferenceStats.from_smiles(gen, kl_size=0)
    assert got == pytest.approx(MS.frechet_distance(g.fcd_mu, g.fcd_sigma, stats.fcd_mu, stats.fcd_sigma), rel=1e-12)
    assert got > 1.0
    assert M.fcd(gen, (stats.fcd_mu, stats.fcd_sigma)) == got
    assert M.fcd(gen, {"mu": stats.fcd_mu, "sigma": stats.fcd_sigma}) == got
    assert M.fcd(ref, stats) == 0.0


# ----------------------------------------------------------------------------- GuacaMol KL
def test_kl_score_follows_guacamol(moses_sample):
    from scipy.stats import entropy, gaussian_kde

    gen, ref, _ = moses_sample
    gen = gen[:120] + gen[:10]  # duplicates are scored once
    score, parts = M.kl_score(gen, ref, return_parts=True)

    def descriptors(smiles):
        uniq = list(dict.fromkeys(Chem.MolToSmiles(Chem.MolFromSmiles(s), isomericSmiles=False) for s in smiles))
        mols = [Chem.MolFromSmiles(s) for s in uniq]
        d = np.array([[getattr(Descriptors, n)(m) for n in MF.KL_DESCRIPTORS] for m in mols])
        fps = _morgan(uniq, 4096)
        sims = np.array([max(DataStructs.BulkTanimotoSimilarity(f, fps[:i] + fps[i + 1:])) for i, f in enumerate(fps)])
        return d, sims

    (rd, rs), (gd, gs) = descriptors(ref), descriptors(gen)
    for j, name in enumerate(MF.KL_DESCRIPTORS[:4]):
        p, q = rd[:, j], gd[:, j]
        x = np.linspace(min(p.min(), q.min()), max(p.max(), q.max()), 1000)
        assert parts[name] == pytest.approx(entropy(gaussian_kde(p)(x) + 1e-10, gaussian_kde(q)(x) + 1e-10), rel=1e-9)
    for j, name in enumerate(MF.KL_DESCRIPTORS[4:], start=4):
        hp, bins = np.histogram(rd[:, j], bins=10, density=True)
        hq, _ = np.histogram(gd[:, j], bins=bins, density=True)
        assert parts[name] == pytest.approx(entropy(hp + 1e-10, hq + 1e-10), rel=1e-9)
    x = np.linspace(min(rs.min(), gs.min()), max(rs.max(), gs.max()), 1000)
    assert parts["internal_similarity"] == pytest.approx(
        entropy(gaussian_kde(rs)(x) + 1e-10, gaussian_kde(gs)(x) + 1e-10), rel=1e-9)
    assert score == pytest.approx(np.mean(np.exp(-np.array(list(parts.values())))))
    assert M.kl_score(ref, ref) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cannot fit a density"):
        M.kl_score([ASPIRIN, ASPIRIN], ref)


# ----------------------------------------------------------------------------- aggregate
def test_moses_metrics_equal_the_functions_and_batching(moses_sample):
    gen, ref, _ = moses_sample
    gen, ref = gen[:40] + ["invalid", gen[0]], ref[:100]
    train = ref[:20] + gen[:4]
    stats = M.ReferenceStats.from_smiles(ref)
    sf = M.ReferenceStats.from_smiles(ref[50:], kl_size=0)
    with pytest.warns(UserWarning, match="unique@100: only 41 valid"):
        got = M.moses_metrics(gen, train=train, test=stats, test_scaffolds=sf, k=(10, 100))
    assert list(got) == list(M.higher_is_better((10, 100)))
    assert got["valid"] == M.validity(gen) == 41 / 42
    assert got["unique@10"] == 1.0 and got["unique@100"] == pytest.approx(40 / 41)
    assert got["Novelty"] == pytest.approx(M.novelty(gen, train)) == pytest.approx(36 / 40)
    assert got["IntDiv"] == pytest.approx(M.internal_diversity(gen), abs=1e-12)
    assert got["SNN/Test"] == pytest.approx(M.snn(gen, stats), abs=1e-12)
    assert got["Scaf/TestSF"] == pytest.approx(M.scaffold_similarity(gen, sf), abs=1e-12)
    assert got["FCD/TestSF"] == pytest.approx(M.fcd(gen, sf), rel=1e-12)
    assert got["Filters"] == M.filters(gen)
    assert got["KL"] == pytest.approx(M.kl_score(gen, stats))

    metric = M.MoleculeMetrics(train=train, test=stats, test_scaffolds=sf, k=(10, 100))
    metric.update(gen[:15])
    metric.update(gen[15:])
    with pytest.warns(UserWarning):
        assert metric.compute() == got
    metric.reset()
    with pytest.raises(ValueError, match="nothing was passed"):
        metric.compute()
    assert set(metric.higher_is_better) == set(got)


def test_parallel_featurize_equals_serial(moses_sample):
    gen, ref, _ = moses_sample
    smiles = (gen + ref)[:450] + ["bad"]
    serial = MF.featurize(smiles, ("canon", "fp", "scaf", "QED"), n_jobs=1)
    assert MF.featurize(smiles, ("canon", "fp", "scaf", "QED"), n_jobs=2) == serial


# ----------------------------------------------------------------------------- reference
def test_reference_save_load_round_trip(tmp_path, moses_sample):
    _, ref, _ = moses_sample
    stats = M.ReferenceStats.from_smiles(ref[:80], kl_size=50)
    stats.save(tmp_path / "ref.npz")
    back = M.ReferenceStats.load(tmp_path / "ref.npz")  # np.load(allow_pickle=False) inside
    assert back.frag == stats.frag and back.scaf == stats.scaf and back.name == stats.name
    for k in ("fps", "fcd_mu", "fcd_sigma", "kl_desc", "kl_sim"):
        assert np.array_equal(getattr(back, k), getattr(stats, k)), k
    assert all(np.array_equal(back.props[p], stats.props[p]) for p in stats.props)
    known = M.KnownMolecules.from_smiles(ref[:80])
    known.save(tmp_path / "known.npz")
    assert np.array_equal(M.KnownMolecules.load(tmp_path / "known.npz").hashes, known.hashes)


def test_molsets_statistics_are_reproduced(moses_sample):
    """molsets' test_stats.npz (what MOSES's published numbers used) equals our features."""
    _, _, idx = moses_sample
    raw = MR.read_molsets_stats("test")
    smiles = MR.moses_smiles("test")
    assert len(smiles) == len(raw["SNN"]["fps"]) == 176074
    pick = sorted(idx[:120])
    cols = MF.featurize([smiles[i] for i in pick], ("fp", "frags", "scaf", *MF.PROPERTIES))
    fps = np.unpackbits(MS.pack(cols["fp"]), axis=1)
    assert np.array_equal(fps, raw["SNN"]["fps"][pick])
    for p in MF.PROPERTIES:
        np.testing.assert_allclose(cols[p], np.asarray(raw[p]["values"])[pick], rtol=0, atol=1e-10)
    assert all(f in raw["Frag"]["frag"] for frags in cols["frags"] for f in frags)
    assert all(s in raw["Scaf"]["scaf"] for s in cols["scaf"] if s is not None)
    assert raw["FCD"]["mu"].shape == (512,) and raw["FCD"]["sigma"].shape == (512, 512)


def test_stats_unpickler_refuses_other_classes():
    payload = pickle.dumps(np.array(Path("x"), dtype=object))
    import io
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        MR._StatsUnpickler(io.BytesIO(payload)).load()


@pytest.mark.slow
def test_moses_train_sample_against_published_row():
    """2,000 MOSES training molecules scored against MOSES test / scaffold test (the
    benchmark does 10,000): the metrics that do not depend on sample size match the
    published Train row."""
    train = MR.moses_smiles("train")
    rng = np.random.default_rng(0)
    gen = [train[i] for i in rng.choice(len(train), 2000, replace=False)]
    got = M.moses_metrics(gen, train=gen[:1000], n_jobs=None, k=(1000,))
    assert got["valid"] == 1.0 and got["unique@1000"] == 1.0 and got["Filters"] == 1.0
    assert got["Novelty"] == pytest.approx(0.5)
    assert got["SNN/Test"] == pytest.approx(0.642, abs=0.01)
    assert got["SNN/TestSF"] == pytest.approx(0.586, abs=0.01)
    assert got["Frag/Test"] == pytest.approx(1.0, abs=0.005)
    assert got["Scaf/TestSF"] == pytest.approx(0.0, abs=0.02)
    assert got["IntDiv"] == pytest.approx(0.857, abs=0.003)
    assert got["IntDiv2"] == pytest.approx(0.851, abs=0.003)
