"""The one table of exercises.

An exercise is one or more blocks of the library's own source between ``# >>> exercise: <id>`` and
``# <<< exercise`` (GELU's two forms are one exercise, and so are the backwards of + and -). ``make exercises``
blanks every block listed here; ``make check`` runs each one's grading tests. A block in the source that is
not listed here (or an entry here without its block) is an error, so the two cannot drift.

The grading tests of a backward call ``check_backward`` (course/grading.py) on raw float64 arrays, so a blank
elsewhere cannot fail them; the others compare with values worked out by hand. ``prerequisites`` are the
exercises whose code the grading tests also run (solve those first): ``make check-selftest`` verifies that
each exercise passes with its own blocks and its prerequisites' filled in, and with nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Exercise:
    """One blank in the student copy: where it is taught, what grades it, and what must be solved first."""

    id: str
    lesson: int
    tests: tuple[str, ...]                  # pytest node ids, relative to the repository root
    prerequisites: tuple[str, ...] = field(default=())


GRADING = "tests/test_course_grading.py::"
OBJECTIVES = "tests/test_objectives.py::"
SPANS = "tests/test_span_corruption.py::"

EXERCISES: tuple[Exercise, ...] = (
    # lesson 2: an op is a forward and a backward side by side
    Exercise("gelu-backward", 2, (GRADING + "test_gelu_backward",)),
    # lesson 3: broadcasting, backwards (ops/_broadcast.py, ops/elementwise.py, ops/linalg.py)
    Exercise("unbroadcast", 3, (GRADING + "test_unbroadcast",)),
    Exercise("add-backward", 3, (GRADING + "test_add_and_sub_backward",), ("unbroadcast",)),
    Exercise("mul-backward", 3, (GRADING + "test_mul_backward",), ("unbroadcast",)),
    Exercise("matmul-backward", 3, (GRADING + "test_matmul_backward",), ("unbroadcast",)),
    # lesson 4: backprop ninja (ops/softmax.py, ops/cross_entropy.py, ops/layer_norm.py)
    Exercise("softmax-backward", 4, (GRADING + "test_softmax_backward",)),
    Exercise("cross-entropy-backward", 4, (GRADING + "test_cross_entropy_backward",)),
    Exercise("layer-norm-backward", 4, (GRADING + "test_layer_norm_backward",)),
    # lesson 5: attention (ops/attention.py)
    Exercise("attention-backward", 5, (GRADING + "test_attention_backward",)),
    # lesson 6: assembling GPT (ops/embedding.py)
    Exercise("embedding-backward", 6, (GRADING + "test_embedding_backward",)),
    # lesson 7: byte-level BPE (tokenizers/merges.py)
    Exercise("bpe-merge-step", 7, (GRADING + "test_bpe_merge_step",
                                   "tests/test_tokenizers.py::test_known_vector_aaabdaaabac")),
    # lesson 8: MLM masking (objectives/masked.py)
    Exercise("mlm-masking", 8, (OBJECTIVES + "test_mlm_labels_and_untouched_positions",
                                OBJECTIVES + "test_mlm_extreme_probabilities",
                                OBJECTIVES + "test_mlm_is_deterministic_under_a_seed_and_dynamic_across_batches",
                                OBJECTIVES + "test_mlm_selection_rate_and_replacement_split",
                                OBJECTIVES + "test_mlm_random_replacements_are_uniform_over_non_special_ids")),
    # lesson 9: CLM (objectives/causal.py)
    Exercise("clm-shift", 9, (OBJECTIVES + "test_clm_shifts_inputs_and_labels_by_one",
                              OBJECTIVES + "test_clm_never_predicts_padding")),
    # lesson 10: the training loop (optim/adamw.py, optim/schedules.py)
    Exercise("adamw-update", 10, ("tests/test_optim.py::test_adamw_matches_a_hand_computed_two_step_example",
                                  "tests/test_optim.py::test_adamw_weight_decay_is_decoupled_from_the_gradient")),
    Exercise("cosine-schedule", 10, (
        "tests/test_schedules.py::test_warmup_cosine_exact_values",
        "tests/test_schedules.py::test_warmup_cosine_is_monotone_after_warmup_and_continuous_at_its_joins")),
    # lesson 15: T5's span corruption (objectives/span_corruption.py)
    Exercise("span-noise-mask", 15, (
        SPANS + "test_every_row_has_t5s_counts_and_alternating_spans_starting_with_kept_tokens",
        SPANS + "test_over_a_million_tokens_density_and_mean_span_length_and_the_span_length_law",
        SPANS + "test_the_mask_is_seeded_and_dynamic",
        SPANS + "test_inputs_and_targets_rebuild_the_original_over_a_million_tokens")),
)
