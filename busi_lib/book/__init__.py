"""The book layer: what the chapters show (records, tables, figures, sentences) and the build."""
