"""Scripts the tests run as real processes: fake servers, and a shadow that crashes."""
