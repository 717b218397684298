def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "wheel: builds and installs the wheel (about 10-20 s); runs in CI with the default "
        "selection, deselect with -m 'not wheel'",
    )
