"""api.sharing.push"""
