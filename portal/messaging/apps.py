from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "portal.messaging"
    label = "messaging"
    verbose_name = "Messaging"
