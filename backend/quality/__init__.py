"""Answer quality: aggregation of crowd answers into final labels, and worker quality."""
