def main(argv=None):
    print("ocirt: not yet")
    return 1
