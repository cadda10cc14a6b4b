"""``format_report``: the ``compare`` result in words, as ``python -m distill compare`` prints it."""

from __future__ import annotations


def format_report(result: dict, *, static_name: str, teacher_name: str, source: str, kind: str) -> str:
    """The ``compare`` result in words: what was compared with what, on what, and what each number means.

    :param kind: ``"texts"`` or ``"pairs"`` (what ``source`` holds).
    """
    k = next((key.split("@", 1)[1] for key in result if key.startswith("neighbour_overlap@")), "10")
    overlap = result.get(f"neighbour_overlap@{k}", float("nan"))
    not_measured = result.get("not_measured") or {}
    n_texts, n_pairs = result["n_texts"], result["n_pairs"]
    if kind == "pairs":
        data = f"{n_pairs:,} sentence pairs from {source} ({n_texts:,} distinct sentences)"
        over = f"the {n_pairs:,} given pairs"
    else:
        data = f"{n_texts:,} distinct texts from {source} (all {n_pairs:,} pairs of them)"
        over = f"all {n_pairs:,} pairs of texts"
    used, recorded = result.get("teacher"), result.get("model_config_teacher")
    other = bool(used and recorded and used != recorded)  # a teacher that is not the one the config names
    lines = [
        f"Static model {static_name} compared with {'the teacher' if other else 'its teacher'} {teacher_name}",
        f"on {data}.",
    ]
    if other:
        lines.append(f"  (the model's config names {recorded} as its teacher, and this teacher is {used}: unless that "
                     "is the same model under another name, these numbers are against another teacher)")
    lines += [
        "",
        f"Spearman correlation between the static model's and the teacher's similarities over {over}: "
        + _number(result["spearman"], not_measured.get("spearman")),
        "  (1 = the static model ranks the pairs exactly as the teacher does, 0 = no relation)",
        f"Neighbour overlap@{k}: " + _number(overlap, not_measured.get(f"neighbour_overlap@{k}")),
    ]
    if overlap is not None:
        lines.append(f"  (on average {overlap:.1%} of each text's {k} nearest neighbours by cosine are the same in "
                     "both models)")
    chance = result.get("neighbour_overlap_chance")
    if chance is not None and chance >= 1 and overlap is not None:
        lines.append(f"  (with {n_texts:,} texts every other text is among the {k} nearest, so the overlap is 1 "
                     "whatever the models: pass more texts)")
    if "spearman_static_vs_gold" in result:
        lines.append("Spearman correlation with the gold pair scores: static model "
                     + _number(result["spearman_static_vs_gold"], not_measured.get("spearman_static_vs_gold"))
                     + ", teacher "
                     + _number(result["spearman_teacher_vs_gold"], not_measured.get("spearman_teacher_vs_gold")))
        if result.get("gold_score_key") == "label":
            lines.append("  (the gold scores are the 'label' of each pair: the file has no 'score')")
        if (result.get("spearman_teacher_vs_gold") or 0) < 0:
            lines.append("  (the teacher ranks the pairs opposite to the gold scores: if they are classes where 0 "
                         "means alike, as an NLI set's entailment, they are read the wrong way round)")
    past = result.get("texts_past_teacher_window") or 0
    if past:
        reads = result.get("static_max_length")
        lines.append(f"  ({past:,} of the {n_texts:,} texts are longer than the teacher reads: it sees their first "
                     f"{result['teacher_window_tokens']:,} tokens, the static model "
                     + ("all of them" if reads is None else f"up to {reads:,}")
                     + "; for these texts the two models are compared on different content)")
    for who in ("static", "teacher"):
        zero = result.get(f"{who}_zero_vectors") or 0
        if zero and not any("zero vector" in why for why in not_measured.values()):
            lines.append(f"  ({zero:,} of the {n_texts:,} texts have a zero vector under the "
                         f"{'static model' if who == 'static' else 'teacher'} (no token it knows): a cosine of 0 "
                         "with every text)")
    lines += [
        f"Speed, both timed here on the same {n_texts:,} texts: static model "
        f"{result['static_texts_per_s']:,.0f} texts/s, teacher {result['teacher_texts_per_s']:,.0f} texts/s "
        f"(teacher on {result.get('teacher_device', '?')})",
        f"  the static model is {result['speed_ratio']:,.0f}x faster than the teacher"
        if result["speed_ratio"] >= 10 else
        f"  the static model is {result['speed_ratio']:,.2f}x as fast as the teacher",
    ]
    return "\n".join(lines)


def _number(value: float | None, why: str | None) -> str:
    """``value`` to three places, or why it was not measured."""
    return f"{value:.3f}" if value is not None else (why or "not measured")
