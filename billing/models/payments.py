"""WeChat Pay payments, top-ups, refunds and withdrawals."""
