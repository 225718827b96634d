"""Transports (SOAP, SFTP, REST) and one package per external system. Never imports Airflow."""
