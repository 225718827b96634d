"""The Airflow side: hooks turning Connections into connector settings. The only code besides
``dags/`` that imports Airflow."""
