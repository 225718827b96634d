"""cvhub's flows on the Airflow side: hooks (Connection -> connector settings), the flow steps the
thin DAG files call, the bank configuration, and the Airflow environment/runner used by the demo,
tests and benchmarks. Only this package and ``dags/`` import Airflow; nothing here keeps secrets.
"""
