"""The lab report: tables, figures and their data, the report page, the cross-task page and the seeds side by side."""
