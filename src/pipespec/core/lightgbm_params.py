"""LightGBM's parameter names and their aliases, as data.

Composition checks ``model.params`` against this table, so it needs no ``import lightgbm``
(about 1.8 s on an idle machine): ``pipespec compose`` stays fast. The table is LightGBM's
own list (``lightgbm.basic._ConfigAliases``) for the version in ``requirements.lock``;
``tests/core/test_lightgbm_params.py`` compares it with the installed LightGBM and prints the
table to paste here when they differ.
"""

from __future__ import annotations

import difflib

LIGHTGBM_VERSION = "4.7.0"

# {parameter: (its aliases, ...)}
PARAMETERS: dict[str, tuple[str, ...]] = {
    "alpha": (),
    "auc_mu_weights": (),
    "bagging_by_query": (),
    "bagging_fraction": ("bagging", "sub_row", "subsample"),
    "bagging_freq": ("subsample_freq",),
    "bagging_seed": ("bagging_fraction_seed",),
    "bin_construct_sample_cnt": ("subsample_for_bin",),
    "boost_from_average": (),
    "boosting": ("boost", "boosting_type"),
    "cat_l2": (),
    "cat_smooth": (),
    "categorical_feature": (
        "cat_column",
        "cat_feature",
        "categorical_column",
        "categorical_features",
    ),
    "cegb_penalty_feature_coupled": (),
    "cegb_penalty_feature_lazy": (),
    "cegb_penalty_split": (),
    "cegb_tradeoff": (),
    "config": ("config_file",),
    "convert_model": ("convert_model_file",),
    "convert_model_language": (),
    "data": ("data_filename", "train", "train_data", "train_data_file"),
    "data_random_seed": ("data_seed",),
    "data_sample_strategy": (),
    "deterministic": (),
    "device_type": ("device",),
    "drop_rate": ("rate_drop",),
    "drop_seed": (),
    "early_stopping_min_delta": (),
    "early_stopping_round": ("early_stopping", "early_stopping_rounds", "n_iter_no_change"),
    "enable_bundle": ("bundle", "is_enable_bundle"),
    "eval_at": ("map_at", "map_eval_at", "ndcg_at", "ndcg_eval_at"),
    "extra_seed": (),
    "extra_trees": ("extra_tree",),
    "fair_c": (),
    "feature_contri": ("fc", "feature_contrib", "feature_penalty", "fp"),
    "feature_fraction": ("colsample_bytree", "sub_feature"),
    "feature_fraction_bynode": ("colsample_bynode", "sub_feature_bynode"),
    "feature_fraction_seed": (),
    "feature_pre_filter": (),
    "first_metric_only": (),
    "force_col_wise": (),
    "force_row_wise": (),
    "forcedbins_filename": (),
    "forcedsplits_filename": (
        "forced_splits",
        "forced_splits_file",
        "forced_splits_filename",
        "fs",
    ),
    "gpu_device_id": (),
    "gpu_device_id_list": (),
    "gpu_platform_id": (),
    "gpu_use_dp": (),
    "group_column": ("group", "group_id", "query", "query_column", "query_id"),
    "header": ("has_header",),
    "histogram_pool_size": ("hist_pool_size",),
    "ignore_column": ("blacklist", "ignore_feature"),
    "input_model": ("model_in", "model_input"),
    "interaction_constraints": (),
    "is_enable_sparse": ("enable_sparse", "is_sparse", "sparse"),
    "is_provide_training_metric": ("is_training_metric", "train_metric", "training_metric"),
    "is_unbalance": ("unbalance", "unbalanced_sets"),
    "label_column": ("label",),
    "label_gain": (),
    "lambda_l1": ("l1_regularization", "reg_alpha"),
    "lambda_l2": ("l2_regularization", "lambda", "reg_lambda"),
    "lambdarank_norm": (),
    "lambdarank_position_bias_regularization": (),
    "lambdarank_truncation_level": (),
    "learning_rate": ("eta", "shrinkage_rate"),
    "linear_lambda": (),
    "linear_tree": ("linear_trees",),
    "local_listen_port": ("local_port", "port"),
    "machine_list_filename": ("machine_list", "machine_list_file", "mlist"),
    "machines": ("nodes", "workers"),
    "max_bin": ("max_bins",),
    "max_bin_by_feature": (),
    "max_cat_threshold": (),
    "max_cat_to_onehot": (),
    "max_delta_step": ("max_leaf_output", "max_tree_output"),
    "max_depth": (),
    "max_drop": (),
    "metric": ("metric_types", "metrics"),
    "metric_freq": ("output_freq",),
    "min_data_in_bin": (),
    "min_data_in_leaf": ("min_child_samples", "min_data", "min_data_per_leaf", "min_samples_leaf"),
    "min_data_per_group": (),
    "min_gain_to_split": ("min_split_gain",),
    "min_sum_hessian_in_leaf": (
        "min_child_weight",
        "min_hessian",
        "min_sum_hessian",
        "min_sum_hessian_per_leaf",
    ),
    "monotone_constraints": ("mc", "monotone_constraint", "monotonic_cst"),
    "monotone_constraints_method": ("mc_method", "monotone_constraining_method"),
    "monotone_penalty": ("mc_penalty", "monotone_splits_penalty", "ms_penalty"),
    "multi_error_top_k": (),
    "neg_bagging_fraction": ("neg_bagging", "neg_sub_row", "neg_subsample"),
    "num_class": ("num_classes",),
    "num_gpu": (),
    "num_grad_quant_bins": (),
    "num_iteration_predict": (),
    "num_iterations": (
        "max_iter",
        "n_estimators",
        "n_iter",
        "nrounds",
        "num_boost_round",
        "num_iteration",
        "num_round",
        "num_rounds",
        "num_tree",
        "num_trees",
    ),
    "num_leaves": ("max_leaf", "max_leaf_nodes", "max_leaves", "num_leaf"),
    "num_machines": ("num_machine",),
    "num_threads": ("n_jobs", "nthread", "nthreads", "num_thread"),
    "objective": ("app", "application", "loss", "objective_type"),
    "objective_seed": (),
    "other_rate": (),
    "output_model": ("model_out", "model_output"),
    "output_result": (
        "name_pred",
        "pred_name",
        "predict_name",
        "predict_result",
        "prediction_name",
        "prediction_result",
    ),
    "parser_config_file": (),
    "path_smooth": (),
    "poisson_max_delta_step": (),
    "pos_bagging_fraction": ("pos_bagging", "pos_sub_row", "pos_subsample"),
    "pre_partition": ("is_pre_partition",),
    "precise_float_parser": (),
    "pred_early_stop": (),
    "pred_early_stop_freq": (),
    "pred_early_stop_margin": (),
    "predict_contrib": ("contrib", "is_predict_contrib"),
    "predict_disable_shape_check": (),
    "predict_leaf_index": ("is_predict_leaf_index", "leaf_index"),
    "predict_raw_score": ("is_predict_raw_score", "predict_rawscore", "raw_score"),
    "quant_train_renew_leaf": (),
    "refit_decay_rate": (),
    "reg_sqrt": (),
    "save_binary": ("is_save_binary", "is_save_binary_file"),
    "saved_feature_importance_type": (),
    "scale_pos_weight": (),
    "seed": ("random_seed", "random_state"),
    "sigmoid": (),
    "skip_drop": (),
    "snapshot_freq": ("save_period",),
    "start_iteration_predict": (),
    "stochastic_rounding": (),
    "task": ("task_type",),
    "time_out": (),
    "top_k": ("topk",),
    "top_rate": (),
    "tree_learner": ("tree", "tree_learner_type", "tree_type"),
    "tweedie_variance_power": (),
    "two_round": ("two_round_loading", "use_two_round_loading"),
    "uniform_drop": (),
    "use_missing": (),
    "use_quantized_grad": (),
    "valid": (
        "test",
        "test_data",
        "test_data_file",
        "valid_data",
        "valid_data_file",
        "valid_filenames",
    ),
    "verbosity": ("verbose",),
    "weight_column": ("weight",),
    "xgboost_dart_mode": (),
    "zero_as_missing": (),
}

DOCS = "https://lightgbm.readthedocs.io/en/stable/Parameters.html"


def aliases(parameter: str) -> tuple[str, ...]:
    """Every key under which LightGBM reads ``parameter``: the parameter's own name first,
    then its aliases (``aliases("monotone_constraints")`` gives ``monotone_constraints``,
    ``mc``, ``monotone_constraint`` and ``monotonic_cst``). A name the table lacks is a
    ``KeyError``: callers name LightGBM's parameters in code, not from data."""
    return (parameter, *PARAMETERS[parameter])


def names() -> frozenset[str]:
    """Every name LightGBM accepts: each parameter and each of its aliases."""
    return frozenset(PARAMETERS).union(*PARAMETERS.values())


def unknown(candidates: list[str]) -> list[str]:
    """The names in ``candidates`` that LightGBM does not accept.

    A name missing from the table is looked up in the installed LightGBM before it is called
    unknown (a newer LightGBM may have added it): only a config with a suspect name pays for
    the import.
    """
    known = names()
    suspects = [name for name in candidates if name not in known]
    if not suspects:
        return []
    try:
        from lightgbm.basic import _ConfigAliases

        installed = _ConfigAliases._get_all_param_aliases()
    except (ImportError, AttributeError):  # no LightGBM, or its internal API moved
        return suspects
    accepted = set(installed).union(*installed.values())
    return [name for name in suspects if name not in accepted]


def close_names(name: str) -> list[str]:
    """Up to three known names close to ``name``, closest first (for "Did you mean")."""
    return difflib.get_close_matches(name, sorted(names()), n=3, cutoff=0.6)
