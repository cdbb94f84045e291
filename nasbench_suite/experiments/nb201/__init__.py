"""`nasbench reproduce nb201`: the five methods on NAS-Bench-201, judged by its table."""
