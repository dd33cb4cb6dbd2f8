"""``SIYU_WAREHOUSE=pyspark://<master>?<spark settings>``: the master and the Spark settings are split apart; a
setting that is not ``spark.*`` with a value is refused with a message naming SIYU_WAREHOUSE and the form."""

from __future__ import annotations

import pytest

from siyu.stores.analytics_engine import spark_master_and_conf


def test_master_alone_and_default() -> None:
    assert spark_master_and_conf("local[2]") == ("local[2]", {})
    assert spark_master_and_conf("") == ("local[*]", {})
    assert spark_master_and_conf("spark://host:7077") == ("spark://host:7077", {})


def test_settings_from_the_query_string() -> None:
    master, conf = spark_master_and_conf(
        "spark://host:7077?spark.driver.memory=8g&spark.sql.shuffle.partitions=16&spark.executor.cores=4"
    )
    assert master == "spark://host:7077"
    assert conf == {"spark.driver.memory": "8g", "spark.sql.shuffle.partitions": "16", "spark.executor.cores": "4"}


@pytest.mark.parametrize("query", ["driver.memory=8g", "spark.driver.memory=", "spark.driver.memory"])
def test_bad_setting_names_the_variable_and_the_form(query: str) -> None:
    with pytest.raises(ValueError, match=r"SIYU_WAREHOUSE: .*pyspark://local\[2\]\?spark.driver.memory=8g"):
        spark_master_and_conf(f"local[2]?{query}")
