"""tiktokfer: short-form video challenges -> labelled facial-expression dataset, as Dagster assets."""
