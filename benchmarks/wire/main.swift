// Placeholder for the wire benchmark (issue 3).
print("wire benchmark not built yet")
