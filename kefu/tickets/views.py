from django.http import HttpResponse


def ticket_list(request):
    return HttpResponse("")


def ticket_detail(request, pk):
    return HttpResponse("")
