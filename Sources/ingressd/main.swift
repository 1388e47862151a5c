print("ingressd")
