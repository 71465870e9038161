"""The answer: scoring rules, statistics, the verdict, and the same across tasks (plain data in, plain data out)."""
