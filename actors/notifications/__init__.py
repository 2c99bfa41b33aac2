"""The notifications actor: delivers what other actors' events say to their users.

messages.py is its public interface; actor.py the actor; store.py its SQL; templates.py
every text it sends; channels/ the ways out (email today).
"""
