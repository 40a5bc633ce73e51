"""Data for the course: registered datasets, your own tables, domain splits, and the cold-start, new-item and
few-shot protocols."""

from cdtl.data.amazon import load_amazon2023
from cdtl.data.coldstart import ColdStartSplit, check_split, cold_start_split, split_checks
from cdtl.data.custom import load_tables, read_table
from cdtl.data.datasets import info, load, load_amazon_food_kitchen
from cdtl.data.domains import SOURCE_GENRES, TARGET_GENRES, overlap_users, split_by_genre
from cdtl.data.download import FetchError, cache_dir, fetch
from cdtl.data.fewshot import FewShotSplit, cross_platform, few_shot_split
from cdtl.data.movielens import load_movielens
from cdtl.data.newitems import NewItemSplit, check_item_texts, new_item_split
from cdtl.data.registry import names as dataset_names
from cdtl.data.tables import DataError, RecData

__all__ = [
    "ColdStartSplit", "DataError", "FetchError", "FewShotSplit", "NewItemSplit", "RecData", "SOURCE_GENRES",
    "TARGET_GENRES", "cache_dir", "check_item_texts", "check_split", "cold_start_split", "cross_platform",
    "dataset_names", "fetch", "few_shot_split", "info", "load", "load_amazon2023", "load_amazon_food_kitchen",
    "load_movielens", "load_tables", "new_item_split", "overlap_users", "read_table", "split_by_genre", "split_checks"
]
