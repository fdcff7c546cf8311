"""The one reader: a file read whole (as `load` reads training files) and in chunks (as
`predict` and `monitor` read), with the dataset's reading options, gives the same values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipespec.bundle.reader import RowReader, read_rows
from pipespec.core.documents import ReadOptions
from pipespec.core.errors import DataError

ADULT_LIKE = ReadOptions(
    header=False,
    columns=("age", "work", "fnlwgt", "income"),
    strip=True,
    na_values=("?",),
    comment="|",
)
TEXT = (
    "|1x3 a junk first line\n"
    "39, State-gov, 77516, <=50K\n50, ?, 83311, >50K\n38, Private, 215646, <=50K\n"
)


def test_chunks_read_what_the_whole_file_reads(tmp_path: Path) -> None:
    path = tmp_path / "adult.test"  # no known extension: read in the training files' format
    path.write_text(TEXT)
    whole = read_rows(path, ADULT_LIKE, where="adult.test")
    assert list(whole.columns) == ["age", "work", "fnlwgt", "income"]
    assert whole["work"].tolist()[0] == "State-gov"  # stripped
    assert pd.isna(whole["work"].tolist()[1])  # '?' after the spaces: missing
    reader = RowReader(path, ADULT_LIKE, wanted=["age", "work"], keep=["income"], chunk_rows=2)
    chunks = list(reader)
    assert [len(c.frame) for c in chunks] == [2, 1]
    assert [c.start for c in chunks] == [0, 2]
    text = pd.concat([c.frame for c in chunks], ignore_index=True)
    assert text["work"].tolist()[::2] == ["State-gov", "Private"]
    assert pd.isna(text["work"].tolist()[1])
    assert [float(v) for v in text["age"]] == whole["age"].astype(float).tolist()
    assert [v for c in chunks for v in c.keep["income"].to_pylist()] == ["<=50K", ">50K", "<=50K"]


def test_na_is_a_category_where_training_kept_it(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("Id,Alley,LotFrontage\n1,NA,65\n2,Grvl,NA\n")
    options = ReadOptions(keep_default_na=False, na_values=("",), dtypes={"LotFrontage": "float"})
    whole = read_rows(path, options, where="train.csv")
    assert whole["Alley"].tolist() == ["NA", "Grvl"]  # a category, not missing
    assert whole["LotFrontage"].isna().tolist() == [False, True]  # declared numeric: missing
    # a reader that wants only some columns applies the dtypes it can
    chunk = next(iter(RowReader(path, options, wanted=["Alley"])))
    assert chunk.frame["Alley"].tolist() == ["NA", "Grvl"]
    with pytest.raises(DataError, match=r"dataset\.dtypes\.Nope: no such column"):
        read_rows(path, ReadOptions(dtypes={"Nope": "float"}), where="train.csv")
