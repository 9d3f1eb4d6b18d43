"""lambdabus."""
